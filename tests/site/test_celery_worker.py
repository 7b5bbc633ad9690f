"""One real Celery worker: on Redis when TEST_REDIS_URL is set (CI), else the filesystem broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from convgen_site.celery import app
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host, port = db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_against_the_test_database(tmp_path: Path) -> None:
    UserFactory.create_batch(3)
    broker = os.environ.get("TEST_REDIS_URL") or "filesystem://"
    broker_dir = tmp_path / "broker"
    for folder in ("queue", "processed", "control"):
        (broker_dir / folder).mkdir(parents=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "convgen_site.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "CONVGEN_VAR_DIR": str(tmp_path),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "convgen_site", "worker", "-Q", "default",
         "--pool", "solo", "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip",
         "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out = tmp_path / "pong.txt"
    old_conf = {
        "broker_url": app.conf.broker_url,
        "broker_transport_options": app.conf.broker_transport_options,
        "task_always_eager": app.conf.task_always_eager,
    }
    try:
        app.conf.broker_url = broker
        app.conf.broker_transport_options = (
            {
                "data_folder_in": str(broker_dir / "queue"),
                "data_folder_out": str(broker_dir / "queue"),
                "processed_folder": str(broker_dir / "processed"),
                "control_folder": str(broker_dir / "control"),
                "store_processed": False,
            }
            if broker.startswith("filesystem")
            else {}
        )
        app.conf.task_always_eager = False
        app.connection_for_write().ensure_connection(max_retries=3)
        with app.connection_for_write() as conn:
            app.send_task("convgen_site.ping", args=[str(out)], queue="default", connection=conn)
        deadline = time.monotonic() + 90
        while not out.exists() and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else ""
            time.sleep(0.2)
        assert out.exists(), "the worker did not run the task within 90 s"
        assert out.read_text() == "pong 3"
    finally:
        app.conf.update(old_conf)
        worker.terminate()
        worker.wait(timeout=30)
    assert settings.CELERY_TASK_ALWAYS_EAGER  # the rest of the suite stays eager
