"""The synthetic OIG generator: deterministic and varied (the shipped sample is hand-written)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from modeling.synthetic import iter_synthetic_oig, iter_synthetic_oig_labelled, write_synthetic_oig


def test_the_same_seed_gives_the_same_lines_and_another_seed_does_not() -> None:
    assert list(iter_synthetic_oig(200, seed=4)) == list(iter_synthetic_oig(200, seed=4))
    assert list(iter_synthetic_oig(200, seed=4)) != list(iter_synthetic_oig(200, seed=5))


def test_it_mixes_every_kind_of_line() -> None:
    lines = list(iter_synthetic_oig_labelled(2000, seed=1))
    kinds = Counter(line.kind for line in lines)
    assert set(kinds) == {"kept", "no_background", "malformed", "exact_duplicate", "near_duplicate"}
    assert 0.3 < kinds["no_background"] / len(lines) < 0.6
    texts = [json.loads(line.text)["text"] for line in lines if line.kind == "kept"]
    assert any("\u0e49" in t for t in texts)  # Thai tone mark
    assert any("\u200d" in t for t in texts)  # emoji ZWJ sequence
    assert any("https://" in t or "<b>" in t or "[[" in t for t in texts)
    assert any(t.count("<human>:") > 1 for t in texts)
    assert any("\n<human>:" in t for t in texts)


def test_without_malformed_lines_every_line_is_json_with_text() -> None:
    for line in iter_synthetic_oig(300, seed=2, malformed_rate=0.0):
        assert isinstance(json.loads(line)["text"], str)


def test_the_generator_writes_the_same_file_and_counts_for_the_same_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    kinds = write_synthetic_oig(first, 300, seed=2026, malformed_rate=0.02, thai_rate=0.15)
    again = write_synthetic_oig(second, 300, seed=2026, malformed_rate=0.02, thai_rate=0.15)
    assert again == kinds
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes().splitlines()) == 300
    assert kinds == {
        "kept": 147,
        "no_background": 137,
        "malformed": 6,
        "exact_duplicate": 4,
        "near_duplicate": 6,
    }
