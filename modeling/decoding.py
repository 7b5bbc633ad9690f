"""The pieces around `model.generate`: batches by a token budget, out-of-memory detection, a
repetition penalty that spares the Background, stopping after the turns asked for, banned phrases.

Pure core: no Django; torch and transformers are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modeling.parsing import cut_after_turns

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "auto_token_budget",
    "ban_token_sequences",
    "kv_bytes_per_token",
    "plan_batches",
]


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
