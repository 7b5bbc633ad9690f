"""Running a Job row: status transitions, cancellation and the stale-heartbeat reaper."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.utils import timezone

from modeling.models import Dataset, GenerationRun, Job, RunStatus, TrainingRun

__all__ = [
    "JOB_MODELS",
    "Cancelled",
    "execute_job",
    "reap_stale_jobs",
    "request_cancel",
    "worker_id",
]

log = logging.getLogger(__name__)
J = TypeVar("J", bound=Job)
JOB_MODELS: tuple[type[Job], ...] = (Dataset, TrainingRun, GenerationRun)
# A running job writes a heartbeat with every progress report; training steps on a 7B model take
# seconds, so ten silent minutes means the worker is gone.
DEFAULT_STALE_AFTER = timedelta(minutes=10)


class Cancelled(Exception):
    """Raised inside a job when a researcher asked for it to stop."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
                "resume to continue from the last checkpoint"
            ),
        )
    return reaped
