"""The shipped sample `modeling/sample_data/oig_sample.jsonl`: hand-written, factual lines.

prepare_data must find exactly what was planted in it, and what it keeps must be usable
training text: English and Thai, single- and multi-turn, no markup left.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from pathlib import Path

import pytest
from django.core.management import call_command

from modeling.models import Dataset, RunStatus
from modeling.oig.prepare import PrepareResult, prepare

SAMPLE = Path(__file__).resolve().parents[2] / "modeling" / "sample_data" / "oig_sample.jsonl"
THAI = re.compile("[\u0e00-\u0e7f]")
LATIN = re.compile("[A-Za-z]")

# What was planted (and what prepare_data finds): 175 good lines, 42 without a Background,
# 5 malformed (2 invalid JSON, 3 without a string "text"), 4 exact and 5 near duplicates.
LINES = 231
KEPT = 175
TRAIN, VAL = 165, 10  # with the default val_fraction 0.05 and seed 0
DROPPED = {
    "blank_line": 0,
    "invalid_utf8": 0,
    "malformed_json": 2,
    "missing_text": 3,
    "no_background": 42,
    "empty_background": 0,
    "no_turns": 0,
    "no_human_bot_pair": 0,
    "exact_duplicate": 4,
    "near_duplicate": 5,
    "over_token_budget": 0,
}
MALFORMED_LINES = [33, 51, 133, 177, 188]

Prepared = tuple[PrepareResult, list[dict]]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    result = prepare(SAMPLE, tmp_path_factory.mktemp("sample") / "out")
    records = [
        json.loads(line)
        for path in (result.train_path, result.val_path)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    return result, records


def test_prepare_finds_exactly_what_was_planted(prepared: Prepared) -> None:
    result, records = prepared
    assert result.lines_read == LINES
    assert (result.n_train, result.n_val) == (TRAIN, VAL)
    assert result.kept == KEPT == len(records) >= 150
    assert result.dropped == DROPPED
    assert list(result.malformed_lines) == MALFORMED_LINES


def test_every_kept_record_is_a_background_with_answered_questions(
    prepared: Prepared,
) -> None:
    _, records = prepared
    for record in records:
        turns = record["turns"]
        assert record["background"].strip()
        assert len(turns) >= 2 and len(turns) % 2 == 0
        assert [t["role"] for t in turns] == ["human", "bot"] * (len(turns) // 2)
        assert all(t["text"].strip() for t in turns)
        assert not any(
            t["text"].lower().startswith("examples include") for t in turns if t["role"] == "bot"
        )


def test_the_sample_mixes_english_and_thai_and_single_and_multi_turn_lines(
    prepared: Prepared,
) -> None:
    _, records = prepared
    thai = [r for r in records if THAI.search(r["background"])]
    assert 20 <= len(thai) <= 35  # about 15%
    for record in thai:  # one language per line: a Thai Background gets a Thai conversation
        assert all(THAI.search(t["text"]) for t in record["turns"])
        assert not LATIN.search(record["background"])
    for record in records:
        if record not in thai:
            assert not any(THAI.search(t["text"]) for t in record["turns"])
    multi = [r for r in records if len(r["turns"]) > 2]
    assert 25 <= len(multi) <= 60  # about a fifth
    assert any(len(r["turns"]) == 6 for r in records)  # three question/answer pairs
    assert any(THAI.search(r["background"]) for r in multi)


def test_the_noise_planted_in_good_lines_is_cleaned(prepared: Prepared) -> None:
    raw = SAMPLE.read_text(encoding="utf-8")
    for planted in ("https://", "<b>", "<br>", "[[", "{{", "&eacute;", "\\u0007", "a\u0301"):
        assert planted in raw
    _, records = prepared
    for record in records:
        for text in [record["background"], *(t["text"] for t in record["turns"])]:
            assert unicodedata.normalize("NFC", text) == text
            assert not re.search(r"https?://|</?[a-z]+>|\[\[|\{\{|&\w+;|[\x00-\x1f]", text)
            assert not re.search(r" [,.;:!?]", text)  # no space left before punctuation
    assert any("🐝" in t["text"] for r in records for t in r["turns"])  # emoji are kept


@pytest.mark.django_db
def test_the_command_reports_the_same_counts(tmp_path: Path) -> None:
    call_command(
        "prepare_data", str(SAMPLE), "--output-dir", str(tmp_path / "out"), "--name", "sample",
        "--no-progress", stdout=io.StringIO(),
    )  # fmt: skip
    dataset = Dataset.objects.get()
    assert dataset.status == RunStatus.SUCCEEDED
    assert (dataset.n_train, dataset.n_val) == (TRAIN, VAL)
    assert dataset.manifest["counts"]["lines_read"] == LINES
    assert dataset.manifest["counts"]["dropped"] == DROPPED
    assert dataset.manifest["malformed_lines"] == MALFORMED_LINES
