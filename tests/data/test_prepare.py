"""prepare(): exact counts, outputs, manifest, determinism, errors, token budget, cancel."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from modeling.oig.parse import DROP_REASONS
from modeling.oig.prepare import (
    MalformedLineError,
    effective_workers,
    load_token_counter,
    prepare,
)
from modeling.progress import Cancelled
from modeling.prompting import build_training_text
from modeling.synthetic import write_synthetic_oig
from tests.data.conftest import HAND_BUILT_KEPT_LINES, HAND_BUILT_MALFORMED_LINES, THAI_BG


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_it_counts_every_kind_of_line_in_a_hand_built_file_exactly(
    hand_built_file: Path, tmp_path: Path
) -> None:
    result = prepare(hand_built_file, tmp_path / "out", val_fraction=0.0)
    assert result.lines_read == 16
    assert result.n_train == 5
    assert result.n_val == 0
    assert result.dropped == {
        "blank_line": 1,
        "invalid_utf8": 0,
        "malformed_json": 1,
        "missing_text": 2,
        "no_background": 1,
        "empty_background": 1,
        "no_turns": 1,
        "no_human_bot_pair": 1,
        "exact_duplicate": 2,
        "near_duplicate": 1,
        "over_token_budget": 0,
    }
    assert result.malformed_lines == tuple(HAND_BUILT_MALFORMED_LINES)
    records = read_jsonl(result.train_path)
    assert [r["source_line"] for r in records] == HAND_BUILT_KEPT_LINES
    assert "malformed lines: 3, 13, 15" in result.summary()


def test_records_have_the_exact_schema_and_clean_content(
    hand_built_file: Path, tmp_path: Path
) -> None:
    result = prepare(hand_built_file, tmp_path / "out", val_fraction=0.0)
    records = {r["source_line"]: r for r in read_jsonl(result.train_path)}
    for record in records.values():
        assert list(record) == ["id", "background", "turns", "source_line"]
        assert all(list(turn) == ["role", "text"] for turn in record["turns"])
        text = build_training_text(record["background"], record["turns"])
        assert record["id"] == hashlib.sha1(text.encode()).hexdigest()[:16]
    assert records[7]["turns"] == [
        {"role": "human", "text": "How many countries does the Danube flow through?"},
        {"role": "bot", "text": "Ten."},
        {"role": "human", "text": "Which sea does it reach?"},
        {"role": "bot", "text": "The Black Sea, see."},
    ]
    assert records[8]["background"] == THAI_BG
    assert records[9]["turns"][1]["text"] == "With fireworks 🎉👨\u200d👩\u200d👧"


def test_the_manifest_records_counts_hashes_and_options(
    hand_built_file: Path, tmp_path: Path
) -> None:
    result = prepare(hand_built_file, tmp_path / "out", val_fraction=0.25, seed=5)
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest == result.manifest
    assert manifest["input"]["sha256"] == hashlib.sha256(hand_built_file.read_bytes()).hexdigest()
    assert manifest["counts"]["lines_read"] == 16
    assert manifest["counts"]["train"] + manifest["counts"]["val"] == 5
    assert set(manifest["counts"]["dropped"]) == set(DROP_REASONS)
    assert manifest["malformed_lines"] == HAND_BUILT_MALFORMED_LINES
    assert manifest["options"]["seed"] == 5
    assert manifest["options"]["val_fraction"] == 0.25
    for name in ("train.jsonl", "val.jsonl"):
        data = (result.output_dir / name).read_bytes()
        assert manifest["outputs"][name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["outputs"][name]["records"] == len(data.splitlines())


def test_the_split_is_deterministic_and_stable_under_limit(tmp_path: Path) -> None:
    source = tmp_path / "oig.jsonl"
    write_synthetic_oig(source, 600, seed=3)
    full = prepare(source, tmp_path / "a", val_fraction=0.2, seed=11)
    again = prepare(source, tmp_path / "b", val_fraction=0.2, seed=11)
    head = prepare(source, tmp_path / "c", val_fraction=0.2, seed=11, limit=300)
    assert full.train_path.read_bytes() == again.train_path.read_bytes()
    assert full.val_path.read_bytes() == again.val_path.read_bytes()
    assert full.n_val > 0
    val_ids = {r["id"] for r in read_jsonl(full.val_path)}
    head_val = {r["id"] for r in read_jsonl(head.val_path)}
    head_train = {r["id"] for r in read_jsonl(head.train_path)}
    assert head_val <= val_ids
    assert not head_train & val_ids
    assert head.lines_read == 300
    # --limit still hashes the whole input, so the manifest names the file, not a prefix.
    assert head.input_sha256 == full.input_sha256
    other_seed = prepare(source, tmp_path / "d", val_fraction=0.2, seed=12)
    assert {r["id"] for r in read_jsonl(other_seed.val_path)} != val_ids


def test_a_generated_file_gives_the_counts_the_generator_labelled(tmp_path: Path) -> None:
    source = tmp_path / "oig.jsonl"
    kinds = write_synthetic_oig(source, 3000, seed=7, malformed_rate=0.03, thai_rate=0.3)
    result = prepare(source, tmp_path / "out")
    assert kinds["malformed"] > 0
    assert kinds["near_duplicate"] > 0
    assert result.kept == kinds["kept"]
    assert result.dropped["no_background"] == kinds["no_background"]
    assert result.dropped["exact_duplicate"] == kinds["exact_duplicate"]
    assert result.dropped["near_duplicate"] == kinds["near_duplicate"]
    assert result.dropped["malformed_json"] + result.dropped["missing_text"] == kinds["malformed"]
    records = read_jsonl(result.train_path) + read_jsonl(result.val_path)
    assert any(len(r["turns"]) > 2 for r in records)
    assert any("\u0e49" in r["background"] for r in records)  # Thai tone mark survived
    assert not any("http" in r["background"] or "<b>" in r["background"] for r in records)


def test_on_error_fail_names_the_file_and_line(hand_built_file: Path, tmp_path: Path) -> None:
    with pytest.raises(MalformedLineError) as caught:
        prepare(hand_built_file, tmp_path / "out", on_error="fail")
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{hand_built_file}:3: invalid JSON")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [hand_built_file]  # no temp dir left behind


def test_a_failed_run_keeps_the_existing_dataset_directory(
    hand_built_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = prepare(hand_built_file, out)
    before = first.train_path.read_bytes()
    with pytest.raises(FileExistsError):
        prepare(hand_built_file, out)
    with pytest.raises(MalformedLineError):
        prepare(hand_built_file, out, overwrite=True, on_error="fail")
    assert first.train_path.read_bytes() == before
    replaced = prepare(hand_built_file, out, overwrite=True, val_fraction=0.0)
    assert replaced.n_train == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oig.jsonl", "out"]


def test_the_callback_can_cancel_and_sees_progress(hand_built_file: Path, tmp_path: Path) -> None:
    seen: list[float] = []

    def stop_at_ten(fraction: float, message: str) -> bool:
        seen.append(fraction)
        return len(seen) >= 2

    with pytest.raises(Cancelled):
        prepare(
            hand_built_file,
            tmp_path / "out",
            progress_callback=stop_at_ten,
            progress_every=5,
            chunk_bytes=300,
        )
    assert not (tmp_path / "out").exists()
    assert seen == sorted(seen)
    assert 0 < seen[0] < 1

    reports: list[float] = []
    prepare(hand_built_file, tmp_path / "ok", progress_callback=lambda f, m: reports.append(f))
    assert reports[-1] == 1.0


@pytest.fixture
def word_tokenizer_dir(tmp_path: Path) -> Path:
    """A tiny BPE tokenizer trained here on a few sentences (no download)."""
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]"])
    corpus = ["Background: Paris is the capital of France.", "<human>: What? <bot>: Paris."] * 20
    tokenizer.train_from_iterator(corpus, trainer)
    directory = tmp_path / "tok"
    directory.mkdir()
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


def test_the_token_budget_drops_exactly_the_long_records(
    hand_built_file: Path, tmp_path: Path, word_tokenizer_dir: Path
) -> None:
    everything = prepare(hand_built_file, tmp_path / "all", val_fraction=0.0)
    count = load_token_counter(word_tokenizer_dir)
    lengths = {
        r["source_line"]: count(build_training_text(r["background"], r["turns"]))
        for r in read_jsonl(everything.train_path)
    }
    budget = sorted(lengths.values())[2]  # keeps the three shortest (no ties in this file)
    assert len(set(lengths.values())) == len(lengths)
    result = prepare(
        hand_built_file,
        tmp_path / "budget",
        val_fraction=0.0,
        tokenizer=word_tokenizer_dir,
        max_tokens=budget,
    )
    kept = sorted(r["source_line"] for r in read_jsonl(result.train_path))
    assert kept == sorted(line for line, n in lengths.items() if n <= budget)
    assert result.dropped["over_token_budget"] == 2
    assert result.manifest["options"]["max_tokens"] == budget


def test_max_tokens_without_a_tokenizer_is_refused(hand_built_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tokenizer"):
        prepare(hand_built_file, tmp_path / "out", max_tokens=10)


def test_near_duplicates_can_be_kept(hand_built_file: Path, tmp_path: Path) -> None:
    result = prepare(hand_built_file, tmp_path / "out", near_dup_threshold=None)
    assert result.kept == 6
    assert result.dropped["near_duplicate"] == 0
    assert result.dropped["exact_duplicate"] == 2


def test_worker_processes_give_byte_identical_output(tmp_path: Path) -> None:
    source = tmp_path / "oig.jsonl"
    write_synthetic_oig(source, 800, seed=9, malformed_rate=0.02)
    one = prepare(source, tmp_path / "one", val_fraction=0.1)
    two = prepare(source, tmp_path / "two", val_fraction=0.1, workers=2, chunk_bytes=5000)
    assert one.train_path.read_bytes() == two.train_path.read_bytes()
    assert one.val_path.read_bytes() == two.val_path.read_bytes()
    assert one.dropped == two.dropped
    assert one.malformed_lines == two.malformed_lines
    assert two.manifest["run"]["workers"] == 2


def test_workers_fall_back_to_in_process_inside_a_daemon_process() -> None:
    import multiprocessing

    assert effective_workers(0) == 0
    assert effective_workers(1) == 1
    assert effective_workers(3) == 3
    assert effective_workers(-1) == (os.cpu_count() or 1) - 1
    process = multiprocessing.current_process()
    was = process.daemon
    process.daemon = True
    try:
        assert effective_workers(4) == 0
    finally:
        process.daemon = was


@pytest.mark.parametrize("chunk_bytes", [1, 64, 300, 1 << 20])
def test_block_size_never_changes_the_result(
    hand_built_file: Path, tmp_path: Path, chunk_bytes: int
) -> None:
    # A BOM on the first line, a line far longer than the block, no newline at the end.
    raw = hand_built_file.read_bytes()
    long_line = json.dumps(
        {"text": "Background: " + "word " * 400 + "<human>: Why?<bot>: Because."}
    ).encode()
    source = tmp_path / "edge.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + raw + long_line)
    reference = prepare(source, tmp_path / "ref", val_fraction=0.0)
    result = prepare(
        source, tmp_path / f"c{chunk_bytes}", val_fraction=0.0, chunk_bytes=chunk_bytes
    )
    assert result.lines_read == reference.lines_read == 17
    assert result.n_train == reference.n_train == 6
    assert result.train_path.read_bytes() == reference.train_path.read_bytes()
    limited = prepare(source, tmp_path / f"l{chunk_bytes}", limit=3, chunk_bytes=chunk_bytes)
    assert limited.lines_read == 3
    assert limited.malformed_lines == (3,)
