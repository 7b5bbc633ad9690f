"""Batched, length-bucketed generation of conversations from Backgrounds.

The model is conditioned on ``build_prompt(background)`` (the template shared with training) and
writes ``<human>: question\\n<bot>: answer`` (possibly more turns), then EOS. This module never
imports Django: the service layer (`modeling.generate_service`) adds rows, progress and files.
Its neighbours: `backgrounds` (reading input), `decoding` (batches, penalty, stopping),
`parsing` (turns from text) and `records` (files and exports); their names are re-exported here.

Reproducibility: each batch is sampled under its own seed, derived from ``params.seed`` and the
ids of the records in that batch. The same seed, input and batch composition therefore give the
same text whatever ran before (a resumed run regenerates the missing batches identically when
their composition is unchanged). A different batch size, bucketing window or shard split changes
batch composition, and with it the sampled text; padding also shifts floating-point sums slightly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from modeling.backgrounds import Background, BackgroundFileError, read_backgrounds
from modeling.decoding import (
    _is_out_of_memory,
    _scoped_repetition_penalty,
    _turn_stopper,
    auto_token_budget,
    ban_token_sequences,
    kv_bytes_per_token,
    plan_batches,
)
from modeling.hardware import generation_dtype
from modeling.parsing import (
    EMPTY_ANSWER,
    EMPTY_OUTPUT,
    EMPTY_QUESTION,
    NO_ANSWER,
    NO_QUESTION,
    NO_TAGS,
    OUT_OF_MEMORY,
    PROMPT_TOO_LONG,
    TRUNCATED,
    ParsedConversation,
    cut_after_turns,
    parse_conversation,
    strip_control_chars,
)
from modeling.prompting import HUMAN_TAG, build_prompt
from modeling.records import (
    merge_records,
    order_key,
    read_records,
    shard,
    to_messages,
    to_oig,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

T = TypeVar("T")

__all__ = [
    "EMPTY_ANSWER",
    "EMPTY_OUTPUT",
    "EMPTY_QUESTION",
    "NO_ANSWER",
    "NO_QUESTION",
    "NO_TAGS",
    "OUT_OF_MEMORY",
    "PROMPT_TOO_LONG",
    "TRUNCATED",
    "Background",
    "BackgroundFileError",
    "GenerationParams",
    "ParsedConversation",
    "auto_token_budget",
    "ban_token_sequences",
    "cut_after_turns",
    "generate_conversations",
    "kv_bytes_per_token",
    "load_model",
    "merge_records",
    "order_key",
    "params_hash",
    "parse_conversation",
    "pick_device",
    "pick_dtype",
    "plan_batches",
    "read_backgrounds",
    "read_records",
    "record_id",
    "shard",
    "strip_control_chars",
    "to_messages",
    "to_oig",
]


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
                    yield from sorted(win_records, key=order_key)
                return
        if ordered:
            yield from sorted(win_records, key=order_key)
