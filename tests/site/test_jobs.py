from datetime import timedelta

import pytest
from django.utils import timezone

from modeling.jobs import Cancelled, execute_job, reap_stale_jobs, request_cancel
from modeling.models import GenerationRun, RunStatus, TrainingRun


def _run() -> TrainingRun:
    return TrainingRun.objects.create(base_model="tiny", output_dir="/tmp/x")


@pytest.mark.django_db
def test_a_job_that_returns_is_marked_succeeded_with_full_progress() -> None:
    run = execute_job(_run(), lambda job: "all good")
    run.refresh_from_db()
    assert (run.status, run.progress, run.message) == (RunStatus.SUCCEEDED, 1.0, "all good")
    assert run.started_at is not None and run.finished_at is not None
    assert run.worker


@pytest.mark.django_db
def test_a_job_that_raises_is_marked_failed_and_the_error_kept() -> None:
    def boom(job: TrainingRun) -> None:
        raise RuntimeError("CUDA out of memory")

    run = _run()
    with pytest.raises(RuntimeError):
        execute_job(run, boom)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == "RuntimeError: CUDA out of memory"


@pytest.mark.django_db
def test_a_cancel_request_is_seen_through_report_progress() -> None:
    run = _run()

    def work(job: TrainingRun) -> None:
        assert job.report_progress(0.2, "step 1") is False
        request_cancel(TrainingRun.objects.get(pk=job.pk))
        if job.report_progress(0.4, "step 2"):
            raise Cancelled

    execute_job(run, work)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.progress == pytest.approx(0.4)


@pytest.mark.django_db
def test_cancelling_a_queued_job_cancels_it_at_once() -> None:
    run = GenerationRun.objects.create(base_model="m", input_path="i", output_path="o")
    assert request_cancel(run) is True
    assert run.status == RunStatus.CANCELLED
    assert request_cancel(run) is False


@pytest.mark.django_db
def test_only_running_jobs_with_a_stale_heartbeat_are_reaped() -> None:
    now = timezone.now()
    stale = _run()
    fresh = _run()
    TrainingRun.objects.filter(pk=stale.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=now - timedelta(minutes=30)
    )
    TrainingRun.objects.filter(pk=fresh.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=now - timedelta(seconds=5)
    )
    assert reap_stale_jobs(timedelta(minutes=10)) == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == RunStatus.FAILED
    assert "worker lost" in stale.error
    assert fresh.status == RunStatus.RUNNING
