"""What a real GPU run needs from generation: a token budget, out-of-memory recovery, stopping after
the turns asked for, a repetition penalty that spares the Background, and V100's fp16."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
import torch

from modeling.generation import (
    OUT_OF_MEMORY,
    Background,
    GenerationParams,
    _scoped_repetition_penalty,
    cut_after_turns,
    generate_conversations,
    kv_bytes_per_token,
    parse_conversation,
    pick_dtype,
    plan_batches,
)

from .conftest import BACKGROUNDS

BGS = [Background(t, f"bg-{i}", i) for i, t in enumerate(BACKGROUNDS)]


def test_batches_stay_within_the_token_budget_longest_first() -> None:
    lengths = {0: 100, 1: 90, 2: 50, 3: 40, 4: 10}
    batches = plan_batches(
        [0, 1, 2, 3, 4], lengths, batch_size=32, n_return=2, max_new_tokens=28, token_budget=600
    )
    assert batches == [[0, 1], [2, 3, 4]]
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert (width + 28) * len(batch) * 2 <= 600


def test_without_a_budget_batches_are_cut_by_count_only() -> None:
    lengths = dict.fromkeys(range(5), 10)
    assert plan_batches(
        list(range(5)), lengths, batch_size=2, n_return=1, max_new_tokens=5, token_budget=0
    ) == [[0, 1], [2, 3], [4]]


def test_a_background_over_budget_alone_still_gets_its_own_batch() -> None:
    lengths = {0: 500, 1: 10}
    assert plan_batches(
        [0, 1], lengths, batch_size=8, n_return=1, max_new_tokens=10, token_budget=100
    ) == [[0], [1]]


def test_llama_7b_kv_cache_costs_half_a_mebibyte_per_token_in_fp16() -> None:
    from transformers import LlamaConfig

    config = LlamaConfig(
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008
    )
    assert kv_bytes_per_token(config, torch.float16) == 2**19


def test_an_out_of_memory_batch_is_split_and_no_record_is_lost(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    params = GenerationParams(batch_size=4, max_new_tokens=6, num_return_sequences=2, seed=3)
    expected = list(generate_conversations(model, tok, BGS, params))
    real = model.generate
    calls: list[int] = []

    def fragile(*args: Any, **kw: Any) -> Any:
        rows = kw["input_ids"].shape[0]
        calls.append(rows)
        if rows > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kw)

    with mock.patch.object(model, "generate", side_effect=fragile):
        got = list(generate_conversations(model, tok, BGS, params))
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    assert all(r["parse_error"] != OUT_OF_MEMORY for r in got)
    assert max(calls) == 4 and calls.count(1) == len(BGS)


def test_a_background_that_does_not_fit_even_alone_is_a_failed_record(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    params = GenerationParams(batch_size=8, max_new_tokens=4)
    boom = torch.OutOfMemoryError("CUDA out of memory")
    with mock.patch.object(model, "generate", side_effect=boom):
        got = list(generate_conversations(model, tok, BGS[:3], params))
    assert [r["parse_error"] for r in got] == [OUT_OF_MEMORY] * 3
    assert [r["position"] for r in got] == [0, 1, 2]


def test_other_errors_are_not_mistaken_for_out_of_memory(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    with (
        mock.patch.object(model, "generate", side_effect=RuntimeError("shape mismatch")),
        pytest.raises(RuntimeError, match="shape mismatch"),
    ):
        list(generate_conversations(model, tok, BGS[:2], GenerationParams(max_new_tokens=4)))


def test_the_text_is_cut_at_the_turn_after_the_ones_asked_for() -> None:
    raw = "<human>: Why? <bot>: Because.\n<human>: And then? <bot>: Then more."
    assert cut_after_turns(raw, 1) == ("<human>: Why? <bot>: Because.", True)
    assert cut_after_turns(raw, 2) == (raw, False)
    assert cut_after_turns(raw, 0) == (raw, False)
    assert cut_after_turns("<human>: Q <bot>: A\nBackground: next", 3) == (
        "<human>: Q <bot>: A",
        True,
    )


def test_a_complete_first_pair_is_a_parsed_conversation_not_a_truncation() -> None:
    # Token budget exhausted while the model had already begun a second question.
    text, stopped = cut_after_turns(
        "<human>: Why is it blue? <bot>: Light scatters. <human>: Wh", 1
    )
    parsed = parse_conversation(text, finished=stopped)
    assert parsed.ok and parsed.question == "Why is it blue?" and parsed.answer == "Light scatters."


def test_generation_stops_once_the_next_question_starts(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    params = GenerationParams(max_new_tokens=40, min_new_tokens=0, temperature=0.0, turns=1)
    stopper_rows: list[list[str]] = []
    from modeling import generation

    real = generation._turn_stopper

    def spy(tokenizer: Any, width: int, turns: int, prefix: str = "") -> Any:
        assert prefix == "<human>:"  # the forced first tag counts as the first turn
        inner = real(tokenizer, width, turns, prefix)

        def call(input_ids: torch.Tensor, scores: Any, **kw: Any) -> torch.Tensor:
            out = inner(input_ids, scores, **kw)
            stopper_rows.append(tokenizer.batch_decode(input_ids[:, width:]))
            return out

        return call

    with mock.patch.object(generation, "_turn_stopper", spy):
        records = list(generate_conversations(model, tok, BGS[:2], params))
    assert stopper_rows, "the stopping criterion was never consulted"
    for rec in records:
        assert len([t for t in rec["turns"] if t["role"] == "human"]) <= 1


def test_the_repetition_penalty_spares_the_background_unless_asked() -> None:
    prompt = torch.tensor([[0, 5, 6]])  # 0 is left padding
    mask = torch.tensor([[0, 1, 1]])
    scores = torch.tensor([[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, -2.0, 2.0]])
    seq = torch.tensor([[0, 5, 6, 7]])  # 7 was generated
    only_generated = _scoped_repetition_penalty(prompt, mask, 2.0, 1.0)(seq, scores.clone())
    assert only_generated.tolist() == [[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, -2.0, 1.0]]
    both = _scoped_repetition_penalty(prompt, mask, 2.0, 2.0)(seq, scores.clone())
    # Background tokens 5 and 6 penalised too (6 has a negative score: multiplied); never pad 0.
    assert both.tolist() == [[2.0, 2.0, 2.0, 2.0, 2.0, 1.0, -4.0, 1.0]]


def test_the_scoped_penalty_equals_transformers_when_both_penalties_match() -> None:
    from transformers import RepetitionPenaltyLogitsProcessor

    torch.manual_seed(0)
    prompt = torch.randint(1, 50, (3, 6))
    seq = torch.cat([prompt, torch.randint(1, 50, (3, 4))], dim=1)
    scores = torch.randn(3, 50)
    ours = _scoped_repetition_penalty(prompt, torch.ones_like(prompt), 1.3, 1.3)(seq, scores)
    theirs = RepetitionPenaltyLogitsProcessor(1.3)(seq, scores.clone())
    assert torch.allclose(ours, theirs)


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((7, 0), torch.float16), ((7, 5), torch.float16), ((8, 0), torch.bfloat16)],
)
def test_generation_picks_fp16_on_a_v100_and_bf16_from_ampere(
    capability: tuple[int, int], expected: torch.dtype
) -> None:
    props = mock.Mock(major=capability[0], minor=capability[1])
    props.name = "fake GPU"
    with (
        mock.patch("torch.cuda.get_device_properties", return_value=props),
        mock.patch("torch.cuda.current_device", return_value=0),
        # What torch says on a V100: bf16 "supported" (by slow emulation).
        mock.patch("torch.cuda.is_bf16_supported", return_value=True),
    ):
        assert pick_dtype(torch.device("cuda"), "auto") == expected
    assert pick_dtype(torch.device("cpu"), "auto") == torch.float32


def test_the_default_generation_settings_ask_for_one_turn_and_spare_the_background() -> None:
    params = GenerationParams()
    assert params.turns == 1 and params.prompt_repetition_penalty == 1.0


def test_the_prompt_ends_with_the_first_tag_and_the_output_keeps_it(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    forced = GenerationParams(max_new_tokens=6, temperature=0.0)
    free = GenerationParams(max_new_tokens=6, temperature=0.0, start_with_question=False)
    for rec in generate_conversations(model, tok, BGS[:3], forced):
        assert rec["raw_text"].startswith("<human>:")
    seen: list[str] = []
    real = type(tok).__call__

    def spy(self: Any, texts: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(texts, list):
            seen.extend(texts)  # the batched prompts
        return real(self, texts, *args, **kw)

    with mock.patch.object(type(tok), "__call__", spy):
        list(generate_conversations(model, tok, BGS[:2], free))
    assert seen and not any(t.endswith("<human>:") for t in seen)
