"""Batched, length-bucketed generation of conversations from Backgrounds, and robust parsing.

The model is conditioned on ``build_prompt(background)`` (the template shared with training) and
writes ``<human>: question\\n<bot>: answer`` (possibly more turns), then EOS. This module never
imports Django: the service layer (`modeling.generate_service`) adds rows, progress and files.

Reproducibility: each batch is sampled under its own seed, derived from ``params.seed`` and the
ids of the records in that batch. The same seed, input and batch composition therefore give the
same text whatever ran before (a resumed run regenerates the missing batches identically when
their composition is unchanged). A different batch size, bucketing window or shard split changes
batch composition, and with it the sampled text; padding also shifts floating-point sums slightly.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from modeling.hardware import generation_dtype
from modeling.oig.clean import clean_text
from modeling.prompting import HUMAN_TAG, ROLES, Turn, build_prompt, render_oig

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

T = TypeVar("T")

__all__ = [
    "Background",
    "BackgroundFileError",
    "GenerationParams",
    "ParsedConversation",
    "generate_conversations",
    "load_model",
    "merge_records",
    "params_hash",
    "parse_conversation",
    "pick_device",
    "pick_dtype",
    "plan_batches",
    "read_backgrounds",
    "read_records",
    "record_id",
    "shard",
    "to_messages",
    "to_oig",
]

# Fixed reasons, so that failures can be counted by kind.
NO_TAGS = "no <human>:/<bot>: tags (garbage)"
NO_QUESTION = "no <human>: turn before the first <bot>:"
NO_ANSWER = "no <bot>: turn (truncated?)"
EMPTY_QUESTION = "empty question"
EMPTY_ANSWER = "empty answer"
TRUNCATED = "no EOS within max_new_tokens (truncated)"
EMPTY_OUTPUT = "empty output"
PROMPT_TOO_LONG = "Background too long for the model's context (not generated)"
OUT_OF_MEMORY = "out of memory even alone in a batch (not generated)"


class BackgroundFileError(ValueError):
    """A Backgrounds file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Background:
    """One input passage, its optional item id and its position in the input file."""

    text: str
    item: str = ""
    position: int = 0


def _clean(text: str, where: str) -> str:
    """The cleaning that training data gets (markup, URLs, controls out; NFC), so a model is
    asked about the same kind of text it learned from; `where` names the line for errors."""
    cleaned = clean_text(text)
    if not cleaned:
        raise BackgroundFileError(f"{where}: the Background is empty once markup is removed")
    return cleaned


def read_backgrounds(path: str | Path) -> list[Background]:
    """Backgrounds from jsonl (`background`, optional `item`/`id`), csv (same columns) or text."""
    p = Path(path)
    if not p.is_file():
        raise BackgroundFileError(f"{p}: no such file")
    suffix = p.suffix.lower()
    out: list[Background] = []
    try:
        with p.open(encoding="utf-8", newline="") as fh:
            if suffix in (".jsonl", ".json", ".ndjson"):
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise BackgroundFileError(
                            f"{p}:{lineno}: invalid JSON ({exc.msg})"
                        ) from exc
                    if not isinstance(rec, dict):
                        raise BackgroundFileError(f"{p}:{lineno}: expected a JSON object")
                    bg = rec.get("background")
                    if not isinstance(bg, str) or not bg.strip():
                        raise BackgroundFileError(
                            f"{p}:{lineno}: missing or empty string field 'background'"
                        )
                    item = rec.get("item", rec.get("id", ""))
                    text = _clean(bg, f"{p}:{lineno}")
                    out.append(Background(text, "" if item is None else str(item), len(out)))
            elif suffix in (".csv", ".tsv"):
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                if not reader.fieldnames or "background" not in reader.fieldnames:
                    raise BackgroundFileError(f"{p}:1: the header has no 'background' column")
                for row in reader:
                    lineno = reader.line_num
                    bg = row.get("background") or ""
                    if not bg.strip():
                        raise BackgroundFileError(f"{p}:{lineno}: empty 'background'")
                    item = row.get("item") or row.get("id") or ""
                    out.append(Background(_clean(bg, f"{p}:{lineno}"), item, len(out)))
            else:
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        out.append(Background(_clean(line, f"{p}:{lineno}"), "", len(out)))
    except UnicodeDecodeError as exc:
        raise BackgroundFileError(f"{p}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise BackgroundFileError(f"{p}: bad CSV ({exc})") from exc
    return out


@dataclass(frozen=True)
class GenerationParams:
    """Every generation setting, with its default; `help` metadata feeds the CLI and web form."""

    batch_size: int = field(default=32, metadata={"help": "Backgrounds per forward batch at most"})
    token_budget: int = field(
        default=0,
        metadata={
            "help": "tokens per batch at most, counted as (longest prompt + max_new_tokens) x "
            "sequences; 0 = sized from the GPU's free memory (no limit on CPU)"
        },
    )
    max_new_tokens: int = field(default=128, metadata={"help": "new tokens per output at most"})
    min_new_tokens: int = field(
        default=0, metadata={"help": "suppress EOS before this many new tokens (benchmarks)"}
    )
    temperature: float = field(
        default=0.7, metadata={"help": "sampling temperature; 0 means greedy decoding"}
    )
    top_p: float = field(default=0.9, metadata={"help": "nucleus sampling mass"})
    top_k: int = field(default=50, metadata={"help": "sample among the k likeliest; 0 = off"})
    repetition_penalty: float = field(
        default=1.1,
        metadata={"help": "penalty on tokens the model already generated; 1.0 = no penalty"},
    )
    prompt_repetition_penalty: float = field(
        default=1.0,
        metadata={
            "help": "penalty on tokens of the Background (transformers applies the repetition "
            "penalty there too, discouraging the names a question should reuse); 1.0 = none"
        },
    )
    start_with_question: bool = field(
        default=True,
        metadata={
            "help": "end the prompt with the <human>: tag, so the model writes the question "
            "straight away, as every training record begins (the tag is kept in the output)"
        },
    )
    turns: int = field(
        default=1,
        metadata={
            "help": "question-answer pairs to write: generation stops at the next <human>: "
            "after them (0 = run until EOS)"
        },
    )
    no_repeat_ngram_size: int = field(
        default=0, metadata={"help": "forbid repeating any n-gram of this size; 0 = off"}
    )
    num_return_sequences: int = field(default=1, metadata={"help": "samples per Background"})
    seed: int = field(default=0, metadata={"help": "random seed (see reproducibility note)"})
    ban_phrases: tuple[str, ...] = field(
        default=(), metadata={"help": "phrases never to generate, e.g. 'Examples include:'"}
    )
    bucket_window: int = field(
        default=8, metadata={"help": "sort by prompt length within windows of this many batches"}
    )

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "token_budget": self.token_budget >= 0,
            "max_new_tokens": self.max_new_tokens >= 1,
            "min_new_tokens": 0 <= self.min_new_tokens <= self.max_new_tokens,
            "temperature": self.temperature >= 0,
            "top_p": 0 < self.top_p <= 1,
            "top_k": self.top_k >= 0,
            "repetition_penalty": self.repetition_penalty > 0,
            "prompt_repetition_penalty": self.prompt_repetition_penalty > 0,
            "turns": self.turns >= 0,
            "no_repeat_ngram_size": self.no_repeat_ngram_size >= 0,
            "num_return_sequences": self.num_return_sequences >= 1,
            "bucket_window": self.bucket_window >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid generation parameter(s): {', '.join(bad)}")
        # JSON gives lists back; keep the dataclass hashable and comparable.
        object.__setattr__(self, "ban_phrases", tuple(p for p in self.ban_phrases if p.strip()))

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ban_phrases"] = list(self.ban_phrases)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationParams:
        """Build from a (JSON) mapping, ignoring unknown keys such as `device` or `resume`."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "ban_phrases" in kwargs:
            kwargs["ban_phrases"] = tuple(kwargs["ban_phrases"] or ())
        return cls(**kwargs)


# Operational settings that do not change what a record *is*, so a resume with a different batch
# size still recognises finished records.
_NOT_IN_ID = ("batch_size", "bucket_window", "token_budget")


def params_hash(params: GenerationParams) -> str:
    """Short hash of the settings that define an output record."""
    d = {k: v for k, v in params.to_dict().items() if k not in _NOT_IN_ID}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def record_id(background: str, sample_index: int, phash: str, occurrence: int = 0) -> str:
    """Stable id: sha1(background, sample index, params hash); `occurrence` separates repeats."""
    key = f"{background}\x00{sample_index}\x00{phash}"
    if occurrence:
        key += f"\x00{occurrence}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def sample_ids(backgrounds: Sequence[Background], params: GenerationParams) -> list[list[str]]:
    """For each Background, the record ids of its samples (duplicate texts get distinct ids)."""
    phash = params_hash(params)
    seen: dict[str, int] = {}
    out = []
    for bg in backgrounds:
        occ = seen.get(bg.text, 0)
        seen[bg.text] = occ + 1
        out.append([record_id(bg.text, s, phash, occ) for s in range(params.num_return_sequences)])
    return out


@dataclass(frozen=True)
class ParsedConversation:
    """Turns parsed from generated text; `ok` is False with a fixed `reason` when unusable."""

    turns: tuple[Turn, ...]
    question: str
    answer: str
    ok: bool
    reason: str = ""

    def turns_as_dicts(self) -> list[dict[str, str]]:
        return [{"role": t.role, "text": t.text} for t in self.turns]


# Tolerant tags: "<human>:", "<Human> :", "<bot>" without colon; roles as in the training data.
_TAG = re.compile(r"<\s*(human|bot)\s*>\s*:?", re.IGNORECASE)
# A new example after the conversation ("\nBackground: ...") ends it.
_NEW_EXAMPLE = re.compile(r"(?:^|\n)\s*Background\s*:", re.IGNORECASE)


def parse_conversation(raw_text: str, finished: bool | None = None) -> ParsedConversation:
    """Parse `<human>:`/`<bot>:` turns from generated text, tolerating common defects.

    Tolerated: an echoed ``Background: ...`` before the first tag (dropped), a new example started
    after the conversation (cut), stray repeated tags and empty turns (dropped), consecutive turns
    of one role (joined), and a trailing unanswered `<human>:` turn (dropped). `finished=False`
    (no EOS within the token budget) marks the output as truncated.
    """
    text = raw_text.replace("\r\n", "\n")
    first_tag = _TAG.search(text)
    if first_tag is None:
        reason = EMPTY_OUTPUT if not text.strip() else NO_TAGS
        return ParsedConversation((), "", "", False, reason)
    body = text[first_tag.start() :]
    cut = _NEW_EXAMPLE.search(body)
    if cut is not None:
        body = body[: cut.start()]
    pieces = _TAG.split(body)
    # split() gives ["", role, text, role, text, ...] because body starts with a tag.
    turns: list[Turn] = []
    for role_raw, chunk in zip(pieces[1::2], pieces[2::2], strict=True):
        role = role_raw.lower()
        chunk = chunk.strip()
        if not chunk:
            continue
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, f"{turns[-1].text} {chunk}")
        else:
            turns.append(Turn(role, chunk))
    if not turns:
        return ParsedConversation((), "", "", False, EMPTY_QUESTION)
    if turns[0].role != "human":
        return ParsedConversation(tuple(turns), "", turns[0].text, False, NO_QUESTION)
    if len(turns) == 1:
        return ParsedConversation(tuple(turns), turns[0].text, "", False, NO_ANSWER)
    question, answer = turns[0].text, turns[1].text
    if len(turns) > 2 and turns[-1].role == "human":
        turns = turns[:-1]
    if finished is False:
        return ParsedConversation(tuple(turns), question, answer, False, TRUNCATED)
    return ParsedConversation(tuple(turns), question, answer, True, "")


# ---------------------------------------------------------------------------------------------
# Model loading and generation (torch imported lazily so parsing stays cheap to import).


def pick_device(device: str = "auto") -> torch.device:
    """`auto` is the first CUDA GPU when there is one, else the CPU."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def pick_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype:
    """fp32 on CPU; on a GPU the same rule as training: bf16 from compute capability 8.0 (not on
    V100, where `torch.cuda.is_bf16_supported()` says yes through emulation), else fp16."""
    return generation_dtype(device, dtype)


def load_model(
    base_model: str,
    adapter: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    merge: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the base model (SDPA attention) and an optional LoRA adapter for batched decoding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    # The training run saves its tokenizer beside the adapter; prefer it (it may add tokens).
    tok_source = (
        adapter if adapter and (Path(adapter) / "tokenizer_config.json").exists() else base_model
    )
    tokenizer = AutoTokenizer.from_pretrained(tok_source)
    tokenizer.padding_side = "left"  # decoder-only: new tokens must follow the prompt directly
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(
        base_model, dtype=pick_dtype(dev, dtype), attn_implementation="sdpa"
    )
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
        if merge:
            # One matmul per layer instead of base + LoRA: faster decoding, same outputs.
            model = model.merge_and_unload()
    model.to(dev)
    model.eval()
    return model, tokenizer


def ban_token_sequences(
    tokenizer: PreTrainedTokenizerBase, phrases: Iterable[str]
) -> list[list[int]]:
    """Token sequences to forbid for each phrase: as written, with a leading space, capitalised."""
    seqs: list[list[int]] = []
    for phrase in phrases:
        variants = {phrase, phrase[:1].upper() + phrase[1:], phrase[:1].lower() + phrase[1:]}
        for v in list(variants):
            variants.add(" " + v)
        for v in sorted(variants):
            ids = tokenizer(v, add_special_tokens=False)["input_ids"]
            if ids and ids not in seqs:
                seqs.append(list(ids))
    return seqs


def cut_after_turns(text: str, turns: int) -> tuple[str, bool]:
    """The text before the (turns + 1)-th `<human>:` tag or a new ``Background:``, and whether
    such an end was found (a clean stop, like EOS). `turns` = 0 never cuts."""
    if turns <= 0:
        return text, False
    humans = [m for m in _TAG.finditer(text) if m.group(1).lower() == "human"]
    ends = [humans[turns].start()] if len(humans) > turns else []
    if humans:
        new_example = _NEW_EXAMPLE.search(text, humans[0].end())
        if new_example is not None:
            ends.append(new_example.start())
    if not ends:
        return text, False
    return text[: min(ends)].rstrip(), True


def _scoped_repetition_penalty(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, generated: float, prompt: float
) -> Any:
    """A logits processor: one penalty for generated tokens, another for Background tokens.

    transformers' own processor penalises every token of the input, the Background included
    (only left padding is exempt), which discourages a question from reusing the passage's names
    and facts. Here padding never counts, tokens the model generated get `generated`, and tokens
    seen only in the Background get `prompt`; with both equal it is transformers' processor.
    """
    import torch
    from transformers import LogitsProcessor

    width = prompt_ids.shape[1]

    class ScopedRepetitionPenalty(LogitsProcessor):  # type: ignore[misc]
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            penalty = torch.ones_like(scores)
            if prompt != 1.0:
                rows = input_ids[:, :width]
                vals = torch.where(prompt_mask.bool(), prompt, 1.0).to(scores.dtype)
                penalty.scatter_reduce_(1, rows, vals, reduce="amax")
            if generated != 1.0 and input_ids.shape[1] > width:
                rows = input_ids[:, width:]
                vals = torch.full(rows.shape, generated, dtype=scores.dtype, device=scores.device)
                penalty.scatter_reduce_(1, rows, vals, reduce="amax")
            return torch.where(scores < 0, scores * penalty, scores / penalty)

    return ScopedRepetitionPenalty()


def _turn_stopper(
    tokenizer: PreTrainedTokenizerBase, width: int, turns: int, prefix: str = ""
) -> Any:
    """A stopping criterion: a row is done once it starts the turn after the ones asked for.
    `prefix` is output text that was put in the prompt (the first `<human>:` tag)."""
    import torch
    from transformers import StoppingCriteria

    class TurnStop(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kw: Any) -> torch.Tensor:
            texts = tokenizer.batch_decode(input_ids[:, width:], skip_special_tokens=False)
            done = [cut_after_turns(prefix + t, turns)[1] for t in texts]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return TurnStop()


def _batch_seed(seed: int, ids: Sequence[str]) -> int:
    h = hashlib.sha1(f"{seed}\x00{','.join(ids)}".encode()).hexdigest()
    return int(h[:15], 16)


def _decode(
    tokenizer: PreTrainedTokenizerBase, ids: list[int], turns: int = 0, prefix: str = ""
) -> tuple[str, bool, int]:
    """Text up to EOS or the end of the turns asked for (tags kept even if they are special
    tokens), whether it ended there (not cut by max_new_tokens), and the new-token count."""
    eos = tokenizer.eos_token_id
    finished = False
    if eos is not None and eos in ids:
        ids = ids[: ids.index(eos)]
        finished = True
    n_new = len(ids) + int(finished)
    drop = {tokenizer.pad_token_id, tokenizer.bos_token_id, eos}
    kept = [i for i in ids if i not in drop]
    text = prefix + str(tokenizer.decode(kept, skip_special_tokens=False))
    text, stopped = cut_after_turns(text, turns)
    return strip_control_chars(text), finished or stopped, n_new


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control_chars(text: str) -> str:
    """Drop C0 control characters (NUL included) except tab and newlines.

    Byte-level tokenizers can decode a sampled byte token to any control character; no rater
    should see one, and PostgreSQL rejects NUL in text and JSON columns.
    """
    return _CONTROL_CHARS.sub("", text)


def plan_batches(
    order: Sequence[int],
    lengths: Mapping[int, int],
    *,
    batch_size: int,
    n_return: int,
    max_new_tokens: int,
    token_budget: int = 0,
) -> list[list[int]]:
    """Split `order` (longest prompt first) into batches of at most `batch_size` Backgrounds
    whose cost, (longest prompt + max_new_tokens) x Backgrounds x n_return, stays within
    `token_budget` (0: no budget). A Background over budget on its own gets a batch alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        width = max(longest, lengths[i])
        cost = (width + max_new_tokens) * (len(current) + 1) * n_return
        if current and (len(current) >= batch_size or (token_budget and cost > token_budget)):
            batches.append(current)
            current, width = [], lengths[i]
        current.append(i)
        longest = width
    if current:
        batches.append(current)
    return batches


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Bytes of KV cache one token costs: keys and values of every layer."""
    heads = getattr(config, "num_attention_heads", 1)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * dtype.itemsize


def auto_token_budget(model: Any, share: float = 0.7) -> int:
    """A token budget from the GPU's free memory: `share` of it for the KV cache (the rest is
    left for activations, logits and fragmentation). 0 (no budget) on CPU."""
    import torch

    param = next(model.parameters())
    if param.device.type != "cuda":
        return 0
    free, _ = torch.cuda.mem_get_info(param.device)
    return max(1, int(share * free / kv_bytes_per_token(model.config, param.dtype)))


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom) or "out of memory" in str(exc).lower()


def generate_conversations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    backgrounds: Sequence[Background],
    params: GenerationParams,
    *,
    model_id: str = "",
    adapter_id: str = "",
    skip_ids: Iterable[str] = (),
    on_batch: Callable[[int], bool | None] | None = None,
    ordered: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield one output record per Background and sample, generated in length-bucketed batches.

    Backgrounds whose sample ids are all in `skip_ids` are skipped (resume). With `ordered`, the
    records of each bucketing window come out in input order; otherwise each batch's records come
    out as soon as it is done. `on_batch(n_backgrounds_done)` runs after each batch; returning
    True stops generation (cancel).
    """
    import torch
    from transformers import GenerationConfig

    skip = set(skip_ids)
    all_ids = sample_ids(backgrounds, params)
    todo = [i for i, ids in enumerate(all_ids) if not all(x in skip for x in ids)]
    # Forced output: the `<human>:` tag every conversation starts with (see start_with_question).
    prefix = HUMAN_TAG if params.start_with_question else ""
    prompts = [build_prompt(backgrounds[i].text) + prefix for i in range(len(backgrounds))]
    lengths = {i: len(tokenizer(prompts[i])["input_ids"]) for i in todo}

    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "min_new_tokens": params.min_new_tokens or None,
        "do_sample": params.do_sample,
        "num_return_sequences": params.num_return_sequences,
        "no_repeat_ngram_size": params.no_repeat_ngram_size or None,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    if params.do_sample:
        gen_kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
    if params.ban_phrases:
        gen_kwargs["bad_words_ids"] = ban_token_sequences(tokenizer, params.ban_phrases)
    gen_config = GenerationConfig(**gen_kwargs)
    record_params = params.to_dict()
    lm: Any = model  # the stubs of transformers confuse mypy about generate()
    device = next(lm.parameters()).device
    max_len = getattr(lm.config, "max_position_embeddings", None)

    def make_record(
        *,
        bg: Background,
        rid: str,
        s: int,
        raw: str,
        parsed: ParsedConversation,
        finished: bool,
        n_new: int,
    ) -> dict[str, Any]:
        return {
            "id": rid,
            "item": bg.item,
            "position": bg.position,
            "sample_index": s,
            "background": bg.text,
            "question": parsed.question,
            "answer": parsed.answer,
            "turns": parsed.turns_as_dicts(),
            "raw_text": raw,
            "parse_ok": parsed.ok,
            "parse_error": parsed.reason,
            "finished": finished,
            "n_new_tokens": n_new,
            "model": model_id,
            "adapter": adapter_id,
            "params": record_params,
        }

    def too_long(i: int) -> bool:
        return max_len is not None and lengths[i] + params.max_new_tokens > max_len

    failed = ParsedConversation((), "", "", False, PROMPT_TOO_LONG)

    def generate_batch(batch: list[int]) -> list[dict[str, Any]]:
        enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True)
        enc = enc.to(device)
        n = params.num_return_sequences
        width = enc["input_ids"].shape[1]
        extra: dict[str, Any] = {}
        if params.repetition_penalty != 1.0 or params.prompt_repetition_penalty != 1.0:
            extra["logits_processor"] = [
                _scoped_repetition_penalty(
                    enc["input_ids"].repeat_interleave(n, 0),
                    enc["attention_mask"].repeat_interleave(n, 0),
                    params.repetition_penalty,
                    params.prompt_repetition_penalty,
                )
            ]
        if params.turns:
            extra["stopping_criteria"] = [_turn_stopper(tokenizer, width, params.turns, prefix)]
        torch.manual_seed(_batch_seed(params.seed, [all_ids[i][0] for i in batch]))
        with torch.inference_mode():
            out = lm.generate(**enc, generation_config=gen_config, **extra)
        records = []
        for row, ids in enumerate(out[:, enc["input_ids"].shape[1] :].tolist()):
            bi, s = batch[row // params.num_return_sequences], row % params.num_return_sequences
            if all_ids[bi][s] in skip:
                continue
            raw, finished, n_new = _decode(tokenizer, ids, params.turns, prefix)
            parsed = parse_conversation(raw, finished=finished)
            records.append(
                make_record(
                    bg=backgrounds[bi],
                    rid=all_ids[bi][s],
                    s=s,
                    raw=raw,
                    parsed=parsed,
                    finished=finished,
                    n_new=n_new,
                )
            )
        return records

    def generate_splitting(batch: list[int]) -> list[dict[str, Any]]:
        """`generate_batch`, halving the batch on out-of-memory (finished records are kept)."""
        try:
            return generate_batch(batch)
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(batch) == 1:
            return fail_all(batch, oom_failed)
        half = len(batch) // 2
        return generate_splitting(batch[:half]) + generate_splitting(batch[half:])

    def fail_all(batch: list[int], parsed: ParsedConversation) -> list[dict[str, Any]]:
        return [
            make_record(
                bg=backgrounds[i], rid=rid, s=s, raw="", parsed=parsed, finished=False, n_new=0
            )
            for i in batch
            for s, rid in enumerate(all_ids[i])
            if rid not in skip
        ]

    oom_failed = ParsedConversation((), "", "", False, OUT_OF_MEMORY)
    budget = params.token_budget or auto_token_budget(lm)
    window = params.batch_size * params.bucket_window
    n_done = 0

    for w_start in range(0, len(todo), window):
        # Longest first: similar lengths share a batch (little padding), and an out-of-memory
        # batch shows up at the start of the window rather than at its end.
        win = sorted(todo[w_start : w_start + window], key=lambda i: (-lengths[i], i))
        # Too long for the context: recorded as failures rather than crashing the whole run.
        overflow = [i for i in win if too_long(i)]
        batches = [overflow] if overflow else []
        fits = [i for i in win if not too_long(i)]
        batches += plan_batches(
            fits,
            lengths,
            batch_size=params.batch_size,
            n_return=params.num_return_sequences,
            max_new_tokens=params.max_new_tokens,
            token_budget=budget,
        )
        win_records: list[dict[str, Any]] = []
        for batch in batches:
            if batch is overflow:
                batch_records = fail_all(batch, failed)
            else:
                batch_records = generate_splitting(batch)
            n_done += len(batch)
            if ordered:
                win_records.extend(batch_records)
            else:
                yield from batch_records
            if on_batch is not None and on_batch(n_done):
                if ordered:
                    yield from sorted(win_records, key=_order_key)
                return
        if ordered:
            yield from sorted(win_records, key=_order_key)


def _order_key(rec: Mapping[str, Any]) -> tuple[int, int]:
    return int(rec["position"]), int(rec["sample_index"])


# ---------------------------------------------------------------------------------------------
# Sharding, merging and export.


def shard(items: Sequence[T], n_shards: int, index: int) -> list[T]:
    """The `index`-th of `n_shards` contiguous, near-equal slices (shards concatenate in order)."""
    if n_shards < 1 or not 0 <= index < n_shards:
        raise ValueError(f"shard index {index} out of range for {n_shards} shards")
    q, r = divmod(len(items), n_shards)
    start = index * q + min(index, r)
    return list(items[start : start + q + (1 if index < r else 0)])


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Output records from a jsonl file; a torn last line (a crash mid-write) is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    lines = p.read_text(encoding="utf-8").split("\n")
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno == len(lines):  # no trailing newline: the write was cut short
                break
            raise ValueError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from exc
    return out


def merge_records(paths: Iterable[str | Path], output: str | Path) -> int:
    """Merge record files into `output` in input order (position, sample); returns the count."""
    by_id: dict[str, dict[str, Any]] = {}
    for path in paths:
        for rec in read_records(path):
            by_id.setdefault(rec["id"], rec)
    records = sorted(by_id.values(), key=_order_key)
    out = Path(output)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return len(records)


def to_oig(record: Mapping[str, Any]) -> dict[str, Any]:
    """An OIG jsonl row: `text` = ``Background: ...<human>: ...<bot>: ...`` plus metadata."""
    turns = [t for t in record["turns"] if t.get("role") in ROLES]
    return {
        "text": render_oig(record["background"], turns),
        "metadata": {"id": record["id"], "source": "convgen"},
    }


def to_messages(record: Mapping[str, Any]) -> dict[str, Any]:
    """A chat row: the Background as the system message, then user/assistant turns."""
    role_map = {"human": "user", "bot": "assistant"}
    messages = [{"role": "system", "content": f"Background: {record['background']}"}]
    messages += [
        {"role": role_map[t["role"]], "content": t["text"]}
        for t in record["turns"]
        if t.get("role") in role_map
    ]
    return {"id": record["id"], "messages": messages}
