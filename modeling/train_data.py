"""Training records as token ids: loading, encoding with the loss mask, padding, evaluation.

Pure core: no Django. The prompt (``Background: ...``) is masked out of the loss unless the
original recipe's `train_on_prompt` is asked for; a record longer than `cutoff_len` keeps its whole
conversation and EOS and loses the end of its Background instead.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeling.prompting import build_completion, build_prompt

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "IGNORE_INDEX",
    "TRUNCATIONS",
    "PadCollator",
    "conversation_loss",
    "encode_record",
    "load_records",
]

IGNORE_INDEX = -100  # label value the loss skips (prompt and padding)
TRUNCATIONS = ("background", "end")  # how a record longer than cutoff_len is made to fit


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a prepared jsonl file; ValueError names file and line of a bad record."""
    records = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec.get("background"), str) or not isinstance(rec["turns"], list):
                    raise TypeError("background must be a string and turns a list")
                build_completion(rec["turns"])  # validates roles
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{lineno}: bad training record ({exc})") from exc
            records.append(rec)
    return records


def encode_record(
    tokenizer: PreTrainedTokenizerBase,
    record: Mapping[str, Any],
    cutoff_len: int,
    *,
    train_on_prompt: bool = False,
    truncation: str = "background",
    counts: Counter[str] | None = None,
) -> dict[str, list[int]] | None:
    """Token ids and labels of one record; labels are IGNORE_INDEX on the prompt.

    The whole text is tokenized at once (as generation sees it) and the first
    len(tokenize(prompt)) positions are masked. EOS ends the conversation so the model learns
    to stop. A record longer than `cutoff_len`:

    - ``truncation="background"`` (default): the Background is shortened (whole tokens from its
      end) so that the whole conversation and EOS fit; the record is dropped (None) only when
      the conversation alone does not fit;
    - ``truncation="end"`` (the original recipe): cut at `cutoff_len`, which loses the end of
      the conversation and EOS; dropped when the prompt alone fills `cutoff_len`.

    `counts`, if given, counts "shortened_background", "cut_at_cutoff" and "dropped_too_long".
    """
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation {truncation!r}: expected one of {', '.join(TRUNCATIONS)}")
    counts = counts if counts is not None else Counter()
    background = record["background"]
    completion = build_completion(record["turns"])
    eos = tokenizer.eos_token_id

    def tokenize(bg: str) -> tuple[list[int], int]:
        prompt = build_prompt(bg)
        n = len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
        ids = list(tokenizer(prompt + completion, add_special_tokens=True)["input_ids"])
        if eos is not None and (not ids or ids[-1] != eos):
            ids.append(eos)
        return ids, n

    ids, prompt_len = tokenize(background)
    if len(ids) > cutoff_len and truncation == "end":
        ids = ids[:cutoff_len]
        if prompt_len >= len(ids):
            counts["dropped_too_long"] += 1
            return None
        counts["cut_at_cutoff"] += 1
    elif len(ids) > cutoff_len:
        bg_ids = list(tokenizer(background, add_special_tokens=False)["input_ids"])
        keep = len(bg_ids) - (len(ids) - cutoff_len)
        # Token boundaries move a little when the text is re-tokenized: shrink until it fits.
        while len(ids) > cutoff_len and keep > 0:
            shorter = str(tokenizer.decode(bg_ids[:keep], skip_special_tokens=True)).strip()
            ids, prompt_len = tokenize(shorter)
            keep -= max(1, len(ids) - cutoff_len)
        if len(ids) > cutoff_len:
            counts["dropped_too_long"] += 1
            return None
        counts["shortened_background"] += 1
    labels = list(ids) if train_on_prompt else [IGNORE_INDEX] * prompt_len + ids[prompt_len:]
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}


@dataclass(frozen=True)
class PadCollator:
    """Right-pads a batch: pad id in input_ids, IGNORE_INDEX in labels, 0 in attention_mask."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids = torch.full((len(features), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def conversation_loss(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[Mapping[str, Any]],
    *,
    cutoff_len: int = 512,
    batch_size: int = 8,
) -> float:
    """Mean cross-entropy per conversation token (prompt excluded) of `records` under `model`.

    The same measure whatever recipe trained the model, so recipes can be compared on it.
    """
    import torch

    feats = [e for r in records if (e := encode_record(tokenizer, r, cutoff_len)) is not None]
    if not feats:
        raise ValueError("no record fits in cutoff_len")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    collate = PadCollator(int(pad))
    device = next(model.parameters()).device
    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(feats), batch_size):
            batch = {k: v.to(device) for k, v in collate(feats[start : start + batch_size]).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            logits = logits.logits[:, :-1].float()
            labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                labels.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            total += float(loss)
            count += int((labels != IGNORE_INDEX).sum())
    return total / count
