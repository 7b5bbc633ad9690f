"""`manage.py generate` and the generation service: files, rows, resume, shards, cancel, Celery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from modeling import generate_service
from modeling.generation import read_records
from modeling.models import Conversation, GenerationRun, RunStatus
from modeling.tasks import generate_task
from tests.generation.conftest import BACKGROUNDS

pytestmark = pytest.mark.django_db
FAST = {"max_new_tokens": 8, "batch_size": 3, "bucket_window": 1}


def _generate(model_dir: str, inp: Path, out: Path, *args: str, **kw: Any) -> str:
    import io

    buf = io.StringIO()
    opts = FAST | kw
    call_command(
        "generate", "--base-model", model_dir, "--input", str(inp), "--output", str(out),
        *args, stdout=buf, **opts,
    )  # fmt: skip
    return buf.getvalue()


def test_it_writes_records_rows_and_a_diversity_summary(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    stdout = _generate(tiny_model_dir, backgrounds_jsonl, out, "--ban-phrase", "Examples include:")
    records = read_records(out)
    assert [r["background"] for r in records] == BACKGROUNDS
    assert [r["item"] for r in records] == [f"bg-{i}" for i in range(len(BACKGROUNDS))]
    assert records[0]["params"]["ban_phrases"] == ["Examples include:"]
    run = GenerationRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert (run.n_done, run.n_total, run.progress) == (7, 7, 1.0)
    assert run.conversations.count() == 7
    assert run.diversity["n_records"] == 7
    assert f"records: 7   parsed ok: {run.diversity['n_parse_ok']}" in stdout
    conv = run.conversations.get(position=3)
    assert conv.background == BACKGROUNDS[3]
    assert conv.record_id == records[3]["id"]


def test_resume_skips_backgrounds_already_in_the_output(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    _generate(tiny_model_dir, backgrounds_jsonl, out)
    full = read_records(out)
    # A crash after three records, in the middle of writing the fourth.
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:20], encoding="utf-8")
    Conversation.objects.all().delete()

    generated: list[str] = []
    real = generate_service.generate_conversations

    def counting(*args: Any, **kw: Any) -> Any:
        for rec in real(*args, **kw):
            generated.append(rec["id"])
            yield rec

    monkeypatch.setattr(generate_service, "generate_conversations", counting)
    _generate(tiny_model_dir, backgrounds_jsonl, out, "--resume")
    resumed = read_records(out)
    assert sorted(generated) == sorted(r["id"] for r in full[3:])
    assert resumed[:3] == full[:3]
    assert [r["id"] for r in resumed] == [r["id"] for r in full]
    run = GenerationRun.objects.get()  # the same run continued
    assert (run.status, run.n_done) == (RunStatus.SUCCEEDED, 7)
    assert run.conversations.count() == 7


def test_it_refuses_to_overwrite_an_output_without_a_flag(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="--resume"):
        _generate(tiny_model_dir, backgrounds_jsonl, out)


def test_a_bad_backgrounds_file_is_a_clear_error(tiny_model_dir: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"background": "ok"}\n{"oops": 1}\n', encoding="utf-8")
    with pytest.raises(CommandError, match=r"bad\.jsonl:2: missing or empty string field"):
        _generate(tiny_model_dir, bad, tmp_path / "out.jsonl")


def test_bad_parameters_are_a_clear_error(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="top_p"):
        _generate(tiny_model_dir, backgrounds_jsonl, tmp_path / "o.jsonl", top_p=1.5)


def test_a_sharded_run_merges_shards_in_input_order(
    tiny_model_dir: str, tiny_adapter_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    _generate(tiny_model_dir, backgrounds_jsonl, out, "--adapter", tiny_adapter_dir, shards=3)
    records = read_records(out)
    assert [r["position"] for r in records] == list(range(7))
    assert {r["adapter"] for r in records} == {tiny_adapter_dir}
    assert len(list(tmp_path.glob("out.shard*-of-003.jsonl"))) == 3
    run = GenerationRun.objects.get()
    assert (run.status, run.n_done, run.n_shards) == (RunStatus.SUCCEEDED, 7, 3)
    assert run.diversity["n_records"] == 7


def _run_row(model_dir: str, inp: Path, out: Path, **params: Any) -> GenerationRun:
    return GenerationRun.objects.create(
        base_model=model_dir,
        input_path=str(inp),
        output_path=str(out),
        params=FAST | params,
    )


def test_a_cancel_request_stops_after_the_current_batch(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    run = _run_row(tiny_model_dir, backgrounds_jsonl, tmp_path / "o.jsonl")
    GenerationRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    run = generate_service.run_generation(run)
    assert run.status == RunStatus.CANCELLED
    assert run.n_done == 3
    assert len(read_records(tmp_path / "o.jsonl")) == 3
    assert run.conversations.count() == 3


def test_the_celery_task_runs_a_generation_eagerly(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    run = _run_row(tiny_model_dir, backgrounds_jsonl, tmp_path / "o.jsonl", num_return_sequences=2)
    generate_task.delay(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.conversations.count() == 14
    assert run.worker


def test_the_celery_task_fans_out_shards_and_merges_them(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    run = _run_row(tiny_model_dir, backgrounds_jsonl, tmp_path / "o.jsonl")
    GenerationRun.objects.filter(pk=run.pk).update(n_shards=2)
    generate_task.delay(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    lines = (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["position"] for x in lines] == list(range(7))


def test_a_failing_run_stores_its_error(tiny_model_dir: str, tmp_path: Path) -> None:
    run = _run_row(tiny_model_dir, tmp_path / "missing.txt", tmp_path / "o.jsonl")
    generate_task.delay(run.pk)  # logs, does not raise: the row says what went wrong
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "missing.txt: no such file" in run.error


def test_a_run_cancelled_in_the_queue_never_starts(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    from modeling.jobs import request_cancel

    run = _run_row(tiny_model_dir, backgrounds_jsonl, tmp_path / "o.jsonl")
    request_cancel(run)
    generate_task.delay(run.pk)
    run.refresh_from_db()
    assert (run.status, run.started_at, run.n_done) == (RunStatus.CANCELLED, None, 0)
    assert not (tmp_path / "o.jsonl").exists()


def test_a_fresh_rerun_replaces_the_rows_of_an_earlier_attempt(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    run = _run_row(tiny_model_dir, backgrounds_jsonl, tmp_path / "o.jsonl")
    Conversation.objects.create(run=run, record_id="stale", background="old")
    generate_service.run_generation(run)
    assert not run.conversations.filter(record_id="stale").exists()
    assert run.conversations.count() == len(read_records(tmp_path / "o.jsonl")) == 7


def test_celery_flag_enqueues_the_run(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    stdout = _generate(tiny_model_dir, backgrounds_jsonl, tmp_path / "o.jsonl", "--celery")
    run = GenerationRun.objects.get()
    assert stdout.strip() == f"queued generation run {run.pk}"
    # Eager in tests: the task already ran.
    assert (run.status, run.n_done) == (RunStatus.SUCCEEDED, 7)


def test_resume_refuses_a_file_written_with_other_settings(
    tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    _generate(tiny_model_dir, backgrounds_jsonl, out)
    with pytest.raises(CommandError, match=r"out\.jsonl:1: written with other generation settings"):
        _generate(tiny_model_dir, backgrounds_jsonl, out, "--resume", temperature=0.2)
    # Batch size does not change what a record is, so it may differ on resume.
    _generate(tiny_model_dir, backgrounds_jsonl, out, "--resume", batch_size=5)
