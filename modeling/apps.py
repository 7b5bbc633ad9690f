from typing import Any

from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "modeling"
    verbose_name = "Data, training and generation"

    def ready(self) -> None:
        from celery.signals import worker_ready

        worker_ready.connect(_reap_on_worker_start, weak=False)


def _reap_on_worker_start(**_: Any) -> None:
    """A worker that starts marks runs orphaned by a dead worker as failed (and resumable).

    Runs whose process on this host is gone are reaped at once; runs elsewhere once their
    heartbeat is stale.
    """
    from modeling.jobs import reap_jobs

    reap_jobs()
