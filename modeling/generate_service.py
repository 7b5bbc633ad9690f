"""Run a GenerationRun: files, Conversation rows, progress, cancel, shards and diversity.

Thin Django layer over `modeling.generation`. Records are appended to the output jsonl and fsynced
after every batch, so a crash loses at most one batch; a finished run's file is rewritten in input
order. Sharded runs write one file per shard; the last shard to finish merges them in order.

Scale-out: one Celery task per shard on the "gpu" queue. Start one worker per GPU
(``CUDA_VISIBLE_DEVICES=i celery -A convgen_site worker -Q gpu -c 1``) on any number of hosts;
the output directory must be shared storage (NFS or similar) so that the last shard can merge.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from modeling.diversity import analyze_records
from modeling.generation import (
    Background,
    GenerationParams,
    generate_conversations,
    load_model,
    merge_records,
    read_backgrounds,
    read_records,
    shard,
)
from modeling.jobs import worker_id
from modeling.models import Conversation, GenerationRun, RunStatus

__all__ = ["run_generation", "run_generation_shard", "shard_path"]

log = logging.getLogger(__name__)

# Keys of run.params that are not GenerationParams fields.
RUN_OPTIONS = ("device", "dtype", "merge", "resume")


_MODEL_CACHE: dict[tuple[str, str, str, str, bool], Any] = {}


def _model(run: GenerationRun) -> Any:
    """Load (or reuse, within one worker process) the run's model and tokenizer."""
    key = (
        run.base_model,
        run.adapter,
        str(run.params.get("device", "auto")),
        str(run.params.get("dtype", "auto")),
        bool(run.params.get("merge", True)),
    )
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()  # one model per worker: GPU memory is the scarce thing
        _MODEL_CACHE[key] = load_model(
            run.base_model, run.adapter or None, device=key[2], dtype=key[3], merge=key[4]
        )
    return _MODEL_CACHE[key]


def shard_path(output_path: str | Path, index: int, n_shards: int) -> Path:
    out = Path(output_path)
    return out.with_name(f"{out.stem}.shard{index:03d}-of-{n_shards:03d}{out.suffix}")


def _conversation(run: GenerationRun, rec: dict[str, Any]) -> Conversation:
    return Conversation(
        run=run,
        record_id=rec["id"],
        item=str(rec.get("item", ""))[:200],
        sample_index=int(rec.get("sample_index", 0)),
        position=int(rec.get("position", 0)),
        background=rec["background"],
        question=rec.get("question", ""),
        answer=rec.get("answer", ""),
        turns=rec.get("turns", []),
        raw_text=rec.get("raw_text", ""),
        parse_ok=bool(rec.get("parse_ok")),
        parse_error=str(rec.get("parse_error", ""))[:200],
        params=rec.get("params", {}),
    )


def _save_rows(run: GenerationRun, records: Sequence[dict[str, Any]]) -> None:
    # ignore_conflicts: a resumed run may meet rows it already stored.
    Conversation.objects.bulk_create(
        [_conversation(run, r) for r in records], ignore_conflicts=True
    )


def _prepare_output(run: GenerationRun, path: Path, resume: bool) -> set[str]:
    """Ids already finished (in the file or the database); a torn last line is dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not resume:
        path.write_text("", encoding="utf-8")
        return set()
    existing = read_records(path)
    # Rewrite the file so that appends never follow a half-written line.
    merge_records([path], path)
    _save_rows(run, existing)
    done = {r["id"] for r in existing}
    done.update(Conversation.objects.filter(run=run).values_list("record_id", flat=True))
    return done


def _generate_into(
    run: GenerationRun, backgrounds: Sequence[Background], out_path: Path, *, sharded: bool
) -> bool:
    """Generate `backgrounds` into `out_path` and rows; returns False when cancelled."""
    params = GenerationParams.from_dict(run.params)
    done = _prepare_output(run, out_path, bool(run.params.get("resume")))
    model, tokenizer = _model(run)
    pending: list[dict[str, Any]] = []
    state = {"counted": 0, "cancelled": False}
    already = sum(
        1 for bg_ids in _ids_by_background(backgrounds, params) if all(i in done for i in bg_ids)
    )
    _add_done(run, already)

    with out_path.open("a", encoding="utf-8") as fh:

        def on_batch(n_done: int) -> bool:
            for rec in pending:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            _save_rows(run, pending)
            pending.clear()
            _add_done(run, n_done - state["counted"])
            state["counted"] = n_done
            run.refresh_from_db(fields=["n_done", "n_total"])
            label = "shard " if sharded else ""
            cancel = run.report_progress(
                run.n_done / max(run.n_total, 1),
                f"{label}{run.n_done}/{run.n_total} Backgrounds",
            )
            state["cancelled"] = cancel
            return cancel

        for rec in generate_conversations(
            model,
            tokenizer,
            backgrounds,
            params,
            model_id=run.base_model,
            adapter_id=run.adapter,
            skip_ids=done,
            on_batch=on_batch,
            ordered=False,
        ):
            pending.append(rec)
    return not state["cancelled"]


def _ids_by_background(
    backgrounds: Sequence[Background], params: GenerationParams
) -> list[list[str]]:
    from modeling.generation import sample_ids

    return sample_ids(backgrounds, params)


def _add_done(run: GenerationRun, n: int) -> None:
    if n:
        GenerationRun.objects.filter(pk=run.pk).update(n_done=F("n_done") + n)


def _finalize(run: GenerationRun, paths: Sequence[Path]) -> None:
    """Merge record files into the output in input order, store diversity, mark succeeded."""
    out = Path(run.output_path)
    merge_records(paths, out)
    ban = GenerationParams.from_dict(run.params).ban_phrases
    report = analyze_records(read_records(out), ban_phrases=ban)
    run.diversity = report.to_dict()
    run.save(update_fields=["diversity"])
    run.finish(
        RunStatus.SUCCEEDED,
        message=f"{report.n_records} records, "
        f"{report.n_records - report.n_parse_ok} parse failures",
    )
    log.info("generation run %s done: %s", run.pk, run.message)


def _fail(run: GenerationRun, exc: BaseException) -> None:
    run.refresh_from_db()
    if not run.is_finished:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        run.finish(RunStatus.FAILED, error=detail[:5000], message="failed")


def _load_backgrounds(run: GenerationRun) -> list[Background]:
    backgrounds = read_backgrounds(run.input_path)
    if not backgrounds:
        raise ValueError(f"{run.input_path}: no Backgrounds")
    return backgrounds


def run_generation(run: GenerationRun) -> GenerationRun:
    """Generate every Background of the run's input (single process); returns the updated row."""
    run.refresh_from_db()
    if run.is_finished:  # e.g. cancelled while it waited in the queue
        return run
    try:
        run.mark_running(worker_id())
        backgrounds = _load_backgrounds(run)
        if not run.params.get("resume"):
            run.conversations.all().delete()  # a fresh start must not keep stale rows
        GenerationRun.objects.filter(pk=run.pk).update(n_total=len(backgrounds), n_done=0)
        run.refresh_from_db()
        out = Path(run.output_path)
        if _generate_into(run, backgrounds, out, sharded=False):
            _finalize(run, [out])
        else:
            run.refresh_from_db()
            run.finish(RunStatus.CANCELLED, message=f"cancelled at {run.n_done}/{run.n_total}")
    except Exception as exc:
        _fail(run, exc)
        raise
    run.refresh_from_db()
    return run


def start_shards(run: GenerationRun) -> int:
    """Count the Backgrounds and reset progress before shard tasks start; returns the count."""
    try:
        backgrounds = _load_backgrounds(run)
    except Exception as exc:
        _fail(run, exc)
        raise
    if not run.params.get("resume"):
        run.conversations.all().delete()
        for index in range(run.n_shards):
            _done_marker(run, index, run.n_shards).unlink(missing_ok=True)
    GenerationRun.objects.filter(pk=run.pk).update(n_total=len(backgrounds), n_done=0)
    return len(backgrounds)


def _done_marker(run: GenerationRun, index: int, n_shards: int) -> Path:
    return shard_path(run.output_path, index, n_shards).with_suffix(".done")


def run_generation_shard(run: GenerationRun, shard_index: int, n_shards: int) -> GenerationRun:
    """Generate one contiguous shard; the last shard to finish merges all shards in order."""
    try:
        now = timezone.now()
        # Only the first shard to start stamps the run as running.
        GenerationRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker_id()
        )
        run.refresh_from_db()
        if run.is_finished:
            return run
        backgrounds = shard(_load_backgrounds(run), n_shards, shard_index)
        part = shard_path(run.output_path, shard_index, n_shards)
        if not _generate_into(run, backgrounds, part, sharded=True):
            run.refresh_from_db()
            if not run.is_finished:
                run.finish(RunStatus.CANCELLED, message=f"cancelled in shard {shard_index}")
            return run
        _done_marker(run, shard_index, n_shards).write_text(timezone.now().isoformat())
        with transaction.atomic():
            # The row lock makes "am I last?" and the merge one step across workers.
            locked = GenerationRun.objects.select_for_update().get(pk=run.pk)
            all_done = all(_done_marker(locked, i, n_shards).exists() for i in range(n_shards))
            if all_done and not locked.is_finished:
                _finalize(
                    locked, [shard_path(locked.output_path, i, n_shards) for i in range(n_shards)]
                )
    except Exception as exc:
        _fail(run, exc)
        raise
    run.refresh_from_db()
    return run
