"""Batched generation on the tiny model: seeds, order, samples, banned phrases, shards."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modeling.generation import (
    PROMPT_TOO_LONG,
    Background,
    GenerationParams,
    ban_token_sequences,
    generate_conversations,
    load_model,
    merge_records,
    params_hash,
    read_records,
    shard,
)
from tests.generation.conftest import BACKGROUNDS

BGS = [Background(text, f"bg-{i}", i) for i, text in enumerate(BACKGROUNDS)]
PARAMS = GenerationParams(batch_size=3, max_new_tokens=12, bucket_window=2, seed=7)


def _run(lm: Any, params: GenerationParams = PARAMS, **kw: Any) -> list[dict[str, Any]]:
    model, tok = lm
    return list(generate_conversations(model, tok, BGS, params, **kw))


def test_the_same_seed_gives_the_same_outputs(tiny_lm: Any) -> None:
    first, second = _run(tiny_lm), _run(tiny_lm)
    assert [r["raw_text"] for r in first] == [r["raw_text"] for r in second]
    assert [r["id"] for r in first] == [r["id"] for r in second]


def test_another_seed_gives_other_outputs_and_other_ids(tiny_lm: Any) -> None:
    first, other = _run(tiny_lm), _run(tiny_lm, replace(PARAMS, seed=8))
    assert [r["raw_text"] for r in first] != [r["raw_text"] for r in other]
    assert {r["id"] for r in first}.isdisjoint(r["id"] for r in other)


def test_records_come_out_in_input_order_with_provenance(tiny_lm: Any) -> None:
    records = _run(tiny_lm, model_id="tiny", adapter_id="none")
    assert [r["position"] for r in records] == list(range(len(BGS)))
    assert [r["item"] for r in records] == [f"bg-{i}" for i in range(len(BGS))]
    first = records[0]
    assert first["background"] == BACKGROUNDS[0]
    assert (first["model"], first["adapter"]) == ("tiny", "none")
    assert first["params"]["seed"] == 7
    assert 1 <= first["n_new_tokens"] <= 12
    assert set(first) >= {"question", "answer", "turns", "raw_text", "parse_ok", "parse_error"}


def test_unordered_mode_yields_the_same_records_batch_by_batch(tiny_lm: Any) -> None:
    ordered = _run(tiny_lm)
    seen_batches: list[int] = []

    def on_batch(n_done: int) -> None:
        seen_batches.append(n_done)

    unordered = _run(tiny_lm, ordered=False, on_batch=on_batch)
    assert sorted(unordered, key=lambda r: r["position"]) == ordered
    assert seen_batches == [3, 6, 7]  # windows of 6 Backgrounds, batches of at most 3


def test_each_background_gets_num_return_sequences_distinct_samples(tiny_lm: Any) -> None:
    params = replace(PARAMS, num_return_sequences=2)
    records = _run(tiny_lm, params)
    assert len(records) == 2 * len(BGS)
    assert [(r["position"], r["sample_index"]) for r in records[:4]] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert len({r["id"] for r in records}) == len(records)


def test_min_new_tokens_forces_the_token_count(tiny_lm: Any) -> None:
    records = _run(tiny_lm, replace(PARAMS, min_new_tokens=12, temperature=0.0))
    assert {r["n_new_tokens"] for r in records} == {12}


def test_it_skips_backgrounds_whose_ids_are_done(tiny_lm: Any) -> None:
    full = _run(tiny_lm)
    done = {full[0]["id"], full[5]["id"]}
    rest = _run(tiny_lm, skip_ids=done)
    assert [r["position"] for r in rest] == [1, 2, 3, 4, 6]


def test_on_batch_returning_true_stops_generation(tiny_lm: Any) -> None:
    records = _run(tiny_lm, on_batch=lambda n: True)
    assert len(records) == 3


def test_a_banned_phrase_never_appears(tiny_lm: Any) -> None:
    _, tok = tiny_lm
    greedy = replace(PARAMS, temperature=0.0, max_new_tokens=16)
    before = _run(tiny_lm, greedy)
    # Ban a two-token piece that greedy decoding produced for the first Background.
    ids = tok(before[0]["raw_text"], add_special_tokens=False)["input_ids"]
    phrase = tok.decode(ids[2:4])
    assert phrase in before[0]["raw_text"]
    after = _run(tiny_lm, replace(greedy, ban_phrases=(phrase,)))
    assert all(phrase not in r["raw_text"] for r in after)
    assert after[0]["raw_text"] != before[0]["raw_text"]
    assert ids[2:4] in ban_token_sequences(tok, [phrase])


def test_the_record_id_ignores_batch_size_but_not_sampling_settings() -> None:
    assert params_hash(PARAMS) == params_hash(replace(PARAMS, batch_size=32, bucket_window=1))
    assert params_hash(PARAMS) != params_hash(replace(PARAMS, temperature=0.9))


def test_it_rejects_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="top_p"):
        GenerationParams(top_p=0)


def test_a_lora_adapter_loads_merged_and_changes_outputs(
    tiny_model_dir: str, tiny_adapter_dir: str, tiny_lm: Any
) -> None:
    with_adapter = load_model(tiny_model_dir, tiny_adapter_dir, device="cpu")
    greedy = replace(PARAMS, temperature=0.0)
    base_out = _run(tiny_lm, greedy)
    lora_out = _run(with_adapter, greedy)
    assert not hasattr(with_adapter[0], "peft_config")  # merged into the base weights
    assert [r["raw_text"] for r in base_out] != [r["raw_text"] for r in lora_out]


def test_shards_are_contiguous_and_cover_everything_once() -> None:
    items = list(range(10))
    parts = [shard(items, 3, i) for i in range(3)]
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert shard(items[:2], 3, 2) == []
    with pytest.raises(ValueError, match="out of range"):
        shard(items, 3, 3)


def test_merging_shard_files_restores_input_order(tiny_lm: Any, tmp_path: Path) -> None:
    import json

    records = _run(tiny_lm)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in records[4:]), encoding="utf-8")
    # A torn final line, as a crash mid-write leaves it, is ignored.
    b.write_text("".join(json.dumps(r) + "\n" for r in records[:4]) + '{"id": "x', encoding="utf-8")
    assert merge_records([a, b], tmp_path / "out.jsonl") == len(records)
    assert read_records(tmp_path / "out.jsonl") == records


def test_a_background_too_long_for_the_context_is_a_failed_record(tiny_lm: Any) -> None:
    model, tok = tiny_lm
    huge = Background(" ".join(["river"] * 2000), "big", 1)
    bgs = [BGS[0], huge, Background(BGS[1].text, "b", 2)]
    records = list(generate_conversations(model, tok, bgs, PARAMS))
    assert [r["position"] for r in records] == [0, 1, 2]
    assert records[1]["parse_ok"] is False
    assert records[1]["parse_error"] == PROMPT_TOO_LONG
    assert records[1]["raw_text"] == ""
    assert records[0]["n_new_tokens"] > 0
