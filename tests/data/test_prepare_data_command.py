"""`manage.py prepare_data` and run_prepare: the Dataset row, errors, cancel, existing dirs."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from modeling.models import Dataset, RunStatus
from modeling.prepare_service import run_prepare

pytestmark = pytest.mark.django_db


def test_the_command_writes_files_and_a_succeeded_dataset_row(
    hand_built_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "prepared"
    call_command(
        "prepare_data", str(hand_built_file), "--output-dir", str(out), "--val-fraction", "0",
        "--name", "hand", "--no-progress",
    )  # fmt: skip
    dataset = Dataset.objects.get()
    assert dataset.name == "hand"
    assert dataset.status == RunStatus.SUCCEEDED
    assert dataset.progress == 1.0
    assert dataset.n_train == 5
    assert dataset.n_val == 0
    assert dataset.source_path == str(hand_built_file)
    assert dataset.output_dir == str(out)
    assert dataset.input_sha256 == dataset.manifest["input"]["sha256"]
    assert dataset.manifest == json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert dataset.manifest["malformed_lines"] == [3, 13, 15]
    assert "malformed lines: 3, 13, 15" in dataset.message
    assert dataset.started_at is not None
    assert dataset.finished_at is not None


def test_on_error_fail_is_a_command_error_naming_file_and_line(
    hand_built_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match=rf"malformed line 3 in {hand_built_file}"):
        call_command(
            "prepare_data", str(hand_built_file), "--output-dir", str(tmp_path / "o"),
            "--on-error", "fail", "--no-progress",
        )  # fmt: skip
    dataset = Dataset.objects.get()
    assert dataset.status == RunStatus.FAILED
    assert f"{hand_built_file}:3" in dataset.error


def test_a_missing_input_or_bad_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("prepare_data", str(tmp_path / "nope.jsonl"), "--no-progress")
    source = tmp_path / "x.jsonl"
    source.write_text("", encoding="utf-8")
    with pytest.raises(CommandError, match="--max-tokens needs --tokenizer"):
        call_command("prepare_data", str(source), "--max-tokens", "5", "--no-progress")


def test_an_existing_directory_needs_overwrite(hand_built_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(CommandError, match="not empty"):
        call_command(
            "prepare_data", str(hand_built_file), "--output-dir", str(out), "--no-progress"
        )
    assert (out / "keep.txt").read_text(encoding="utf-8") == "precious"
    call_command(
        "prepare_data", str(hand_built_file), "--output-dir", str(out), "--overwrite",
        "--no-progress",
    )  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.jsonl", "val.jsonl"]


def test_the_default_output_dir_is_under_the_data_dir(
    hand_built_file: Path, tmp_path: Path, settings: mock.Mock
) -> None:
    settings.CONVGEN_DATA_DIR = tmp_path / "data"
    call_command("prepare_data", str(hand_built_file), "--limit", "4", "--no-progress")
    dataset = Dataset.objects.get()
    assert dataset.output_dir == str(tmp_path / "data" / "oig")
    assert dataset.manifest["counts"]["lines_read"] == 4
    assert dataset.n_train + dataset.n_val == 1


def test_a_cancel_request_stops_the_run_and_keeps_the_old_directory(
    hand_built_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "train.jsonl").write_text("old\n", encoding="utf-8")
    dataset = Dataset.objects.create(name="c", cancel_requested=True)
    run_prepare(dataset, input_path=hand_built_file, output_dir=out, overwrite=True, limit=None)
    dataset.refresh_from_db()
    assert dataset.status == RunStatus.CANCELLED
    assert (out / "train.jsonl").read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oig.jsonl", "prepared"]


def test_run_prepare_rejects_unknown_options(hand_built_file: Path, tmp_path: Path) -> None:
    dataset = Dataset.objects.create(name="x")
    with pytest.raises(TypeError, match="unknown prepare options: bogus"):
        run_prepare(dataset, input_path=hand_built_file, output_dir=tmp_path / "o", bogus=1)


def test_progress_reaches_the_row(hand_built_file: Path, tmp_path: Path) -> None:
    dataset = Dataset.objects.create(name="p")
    seen: list[float] = []
    with mock.patch.object(Dataset, "report_progress", autospec=True, return_value=False) as rp:
        run_prepare(
            dataset,
            input_path=hand_built_file,
            output_dir=tmp_path / "o",
            on_progress=lambda f, m: seen.append(f),
            min_interval_s=0.0,
        )
    assert seen[-1] == 1.0
    assert rp.call_args.args[1] == 1.0
    assert "16 lines, 5 kept" in rp.call_args.args[2]


def test_the_command_with_workers_writes_the_same_files(
    hand_built_file: Path, tmp_path: Path
) -> None:
    for name, workers in (("a", "0"), ("b", "2")):
        call_command(
            "prepare_data", str(hand_built_file), "--output-dir", str(tmp_path / name),
            "--workers", workers, "--no-progress",
        )  # fmt: skip
    for part in ("train.jsonl", "val.jsonl"):
        assert (tmp_path / "a" / part).read_bytes() == (tmp_path / "b" / part).read_bytes()
    assert [d.manifest["run"]["workers"] for d in Dataset.objects.order_by("pk")] == [0, 2]
