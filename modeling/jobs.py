"""Running a Job row: queueing, status transitions, cancellation and the reapers of orphaned jobs.

A job whose process dies (SIGKILL, OOM killer, reboot) cannot mark its own row, which would stay
"running" for ever. Two reapers mark such rows failed, with a message that says to resume:

- `reap_dead_workers` at once, for rows whose `worker` ("host:pid") names this host and a
  process that is gone, a zombie, or a newer process that took the pid over;
- `reap_stale_jobs` for rows of any host whose heartbeat is older than ten minutes.

Both run when a Celery worker starts (modeling.apps) and from `manage.py reap_jobs` (cron).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psutil
from django.utils import timezone

from modeling.models import Dataset, GenerationRun, Job, RunStatus, TrainingRun
from modeling.progress import Cancelled

__all__ = [
    "JOB_MODELS",
    "Cancelled",
    "enqueue",
    "execute_job",
    "job_dir",
    "job_status",
    "process_alive",
    "reap_dead_workers",
    "reap_jobs",
    "reap_stale_jobs",
    "request_cancel",
    "requeue",
    "start_job",
    "worker_id",
]

log = logging.getLogger(__name__)
J = TypeVar("J", bound=Job)
JOB_MODELS: tuple[type[Job], ...] = (Dataset, TrainingRun, GenerationRun)
# A running job writes a heartbeat with every progress report; training steps on a 7B model take
# seconds, so ten silent minutes means the worker is gone.
DEFAULT_STALE_AFTER = timedelta(minutes=10)
RESUME_HINT = "resume to continue from the last checkpoint"
# Process start times come from boot time plus clock ticks; allow for that much rounding.
START_TIME_SLACK_S = 2.0


def worker_id() -> str:
    """This process as "host:pid", the form the dead-worker reaper parses."""
    return f"{socket.gethostname()}:{os.getpid()}"


def job_dir(root: Path, job: Job, label: str = "") -> Path:
    """A fresh directory for a job's files: ROOT/<pk>-<8 random hex>[-label].

    The random part keeps a reset database (whose ids start again) from pointing a new job at an
    old job's files, e.g. resuming from its checkpoints.
    """
    return root / "-".join(part for part in (str(job.pk), uuid.uuid4().hex[:8], label) if part)


def enqueue(job: Job, task: Any, *args: Any) -> None:
    """Send the Celery `task` with `args` and store its task id on the job's row."""
    result = task.delay(*args)
    type(job)._default_manager.filter(pk=job.pk).update(celery_task_id=result.id or "")


def start_job(
    model: type[J],
    task: Any,
    *,
    path_field: str,
    path: Callable[[J], Path],
    task_args: Callable[[J], tuple[Any, ...]] | None = None,
    **fields: Any,
) -> J:
    """Start a job: create its row, give it its output path (which needs the row's pk), queue it.

    `path(job)` names the output (a folder or file) stored in `path_field`; the Celery `task`
    gets `task_args(job)`, by default just the job's pk.
    """
    job = model._default_manager.create(**{path_field: ""}, **fields)
    setattr(job, path_field, str(path(job)))
    model._default_manager.filter(pk=job.pk).update(**{path_field: getattr(job, path_field)})
    enqueue(job, task, *(task_args(job) if task_args else (job.pk,)))
    return job


def requeue(job: Job, task: Any, **fields: Any) -> bool:
    """Queue a failed or cancelled job again: `task(job.pk)`, with `fields` stored on the row.

    The status goes back to queued and the cancel request, error and finish time are cleared.
    Returns False, changing nothing, for a job in any other state.
    """
    if job.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        return False
    type(job)._default_manager.filter(pk=job.pk).update(
        status=RunStatus.QUEUED, cancel_requested=False, error="", finished_at=None, **fields
    )
    enqueue(job, task, job.pk)
    return True


def job_status(job: Job) -> dict[str, Any]:
    """What every job's status.json says; each page adds its own counters."""
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": str(job.get_status_display()),
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "is_finished": job.is_finished,
        "cancel_requested": job.cancel_requested,
    }


def execute_job(job: J, work: Callable[[J], str | None]) -> J:
    """Run `work(job)` with the row marked running, then succeeded, cancelled or failed.

    `work` reports progress through `job.report_progress` and raises `Cancelled` when that returns
    True. Failures are stored on the row (and re-raised so Celery and the command see them).
    """
    job.mark_running(worker_id())
    try:
        message = work(job)
    except Cancelled:
        job.finish(RunStatus.CANCELLED, message="cancelled by request")
    except BaseException as exc:
        job.finish(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        job.finish(RunStatus.SUCCEEDED, message=message or "")
    return job


def request_cancel(job: Job) -> bool:
    """Ask a queued or running job to stop; a queued one is cancelled at once."""
    if job.is_finished:
        return False
    model = type(job)
    model._default_manager.filter(pk=job.pk).update(cancel_requested=True)
    model._default_manager.filter(pk=job.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now(), message="cancelled before start"
    )
    job.refresh_from_db()
    return True


def reap_stale_jobs(stale_after: timedelta = DEFAULT_STALE_AFTER) -> int:
    """Mark running jobs whose worker stopped sending heartbeats as failed (they can be resumed)."""
    cutoff = timezone.now() - stale_after
    reaped = 0
    for model in JOB_MODELS:
        stale = model._default_manager.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff)
        for job in stale:
            log.warning("%s %s: no heartbeat since %s, marking failed", model.__name__, job.pk,
                        job.heartbeat_at)  # fmt: skip
        reaped += stale.update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error=(
                f"worker lost: no heartbeat for more than {int(stale_after.total_seconds())} s; "
                f"{RESUME_HINT}"
            ),
        )
    return reaped


def process_alive(pid: int, started_by: datetime | None = None) -> bool:
    """Whether process `pid` on this host still runs and is the one that started at `started_by`.

    A zombie counts as gone. A process that started after `started_by` has only inherited the pid
    (the job's process died and the pid was reused), so it counts as gone too.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists, and we cannot say more
        return True
    return started_by is None or created <= started_by.timestamp() + START_TIME_SLACK_S


def _parse_worker(worker: str) -> tuple[str, int] | None:
    host, sep, pid = worker.rpartition(":")
    if not sep or not pid.isdigit():
        return None
    return host, int(pid)


def reap_dead_workers(host: str | None = None) -> int:
    """Mark running jobs whose process on this host is gone as failed (resumable), at once.

    Only rows one process owns are judged by their pid: a sharded generation run is worked on by
    several processes, so it is left to the heartbeat reaper.
    """
    host = host or socket.gethostname()
    reaped = 0
    for model in JOB_MODELS:
        running = model._default_manager.filter(
            status=RunStatus.RUNNING, worker__startswith=f"{host}:"
        )
        if model is GenerationRun:
            sharded = GenerationRun.objects.filter(n_shards__gt=1).values("pk")
            running = running.exclude(pk__in=sharded)
        for job in running.only("pk", "worker", "started_at"):
            parsed = _parse_worker(job.worker)
            if parsed is None or parsed[0] != host or process_alive(parsed[1], job.started_at):
                continue
            # Only if nobody restarted it meanwhile (a resume writes a new worker).
            updated = model._default_manager.filter(
                pk=job.pk, status=RunStatus.RUNNING, worker=job.worker
            ).update(
                status=RunStatus.FAILED,
                finished_at=timezone.now(),
                error=f"worker lost: process {job.worker} is gone; {RESUME_HINT}",
            )
            if updated:
                log.warning("%s %s: process %s is gone, marking failed", model.__name__, job.pk,
                            job.worker)  # fmt: skip
            reaped += updated
    return reaped


def reap_jobs(stale_after: timedelta = DEFAULT_STALE_AFTER) -> int:
    """Both reapers: dead processes on this host first, then stale heartbeats anywhere."""
    return reap_dead_workers() + reap_stale_jobs(stale_after)
