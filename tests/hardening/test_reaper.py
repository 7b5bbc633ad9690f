"""Orphaned jobs: a row whose process on this host is gone is reaped at once, others are not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import psutil
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from modeling.apps import _reap_on_worker_start
from modeling.jobs import process_alive, reap_dead_workers
from modeling.models import Dataset, GenerationRun, RunStatus, TrainingRun

HOST = socket.gethostname()


def _dead_pid() -> int:
    """The pid of a process that has exited and been waited for."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _running(model: type[Any], worker: str, **fields: Any) -> Any:
    now = timezone.now()
    defaults: dict[str, Any] = {
        TrainingRun: {"base_model": "m", "output_dir": "o"},
        GenerationRun: {"base_model": "m", "input_path": "i", "output_path": "o"},
        Dataset: {"name": "d", "source_path": "s", "output_dir": "o"},
    }[model]
    return model.objects.create(
        **defaults,
        status=RunStatus.RUNNING,
        worker=worker,
        started_at=fields.pop("started_at", now),
        heartbeat_at=now,
        **fields,
    )


def test_process_alive_tells_live_dead_zombie_and_reused_pids() -> None:
    me = psutil.Process()
    started = datetime.fromtimestamp(me.create_time(), tz=UTC)
    assert process_alive(os.getpid(), started + timedelta(seconds=30)) is True
    assert process_alive(_dead_pid()) is False
    # Our pid, but the job started long before this process did: the pid was taken over.
    assert process_alive(os.getpid(), started - timedelta(hours=1)) is False
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not waited for yet
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        assert process_alive(zombie.pid) is False
    finally:
        zombie.wait()


@pytest.mark.django_db
def test_a_job_whose_process_is_gone_is_reaped_at_once_and_nothing_else() -> None:
    dead = f"{HOST}:{_dead_pid()}"
    killed = _running(TrainingRun, dead)
    prepared = _running(Dataset, dead)
    alive = _running(TrainingRun, f"{HOST}:{os.getpid()}")
    elsewhere = _running(TrainingRun, f"other-host.example:{_dead_pid()}")
    sharded = _running(GenerationRun, dead, n_shards=4)  # other shards may still be working
    finished = TrainingRun.objects.create(
        base_model="m", output_dir="o", status=RunStatus.SUCCEEDED, worker=dead
    )

    assert reap_dead_workers() == 2
    for job in (killed, prepared):
        job.refresh_from_db()
        assert job.status == RunStatus.FAILED
        assert job.error == (
            f"worker lost: process {dead} is gone; resume to continue from the last checkpoint"
        )
        assert job.finished_at is not None
    for job in (alive, elsewhere, sharded, finished):
        before = job.status
        job.refresh_from_db()
        assert job.status == before
    assert reap_dead_workers() == 0


@pytest.mark.django_db
def test_a_pid_taken_over_by_a_newer_process_counts_as_gone() -> None:
    # The row says our pid, but it started an hour before this process existed.
    run = _running(
        TrainingRun, f"{HOST}:{os.getpid()}", started_at=timezone.now() - timedelta(hours=5)
    )
    assert reap_dead_workers() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED


@pytest.mark.django_db
def test_a_starting_worker_reaps_dead_processes_and_stale_heartbeats() -> None:
    dead = _running(TrainingRun, f"{HOST}:{_dead_pid()}")
    stale = _running(GenerationRun, f"other-host.example:{os.getpid()}")
    GenerationRun.objects.filter(pk=stale.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=11)
    )
    quiet = _running(GenerationRun, f"other-host.example:{os.getpid()}")
    _reap_on_worker_start(sender=None)
    statuses = {
        name: type(job).objects.get(pk=job.pk).status
        for name, job in (("dead", dead), ("stale", stale), ("quiet", quiet))
    }
    assert statuses == {
        "dead": RunStatus.FAILED,
        "stale": RunStatus.FAILED,
        "quiet": RunStatus.RUNNING,
    }


@pytest.mark.django_db
def test_the_reap_jobs_command_reports_what_it_did() -> None:
    _running(TrainingRun, f"{HOST}:{_dead_pid()}")
    slow = _running(GenerationRun, f"other-host.example:{os.getpid()}")
    GenerationRun.objects.filter(pk=slow.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=3)
    )
    out = StringIO()
    call_command("reap_jobs", stdout=out)
    assert out.getvalue().strip() == (
        "reaped 1 job(s): 1 with a dead process on this host, 0 without a heartbeat for 10 min"
    )
    out = StringIO()
    call_command("reap_jobs", "--stale-minutes", "2", stdout=out)
    assert "reaped 1 job(s): 0 with a dead process on this host, 1 without a heartbeat" in (
        out.getvalue()
    )
    assert not TrainingRun.objects.filter(status=RunStatus.RUNNING).exists()
    assert not GenerationRun.objects.filter(status=RunStatus.RUNNING).exists()
    with pytest.raises(CommandError, match="--stale-minutes must be > 0"):
        call_command("reap_jobs", "--stale-minutes", "0")
