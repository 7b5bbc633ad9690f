"""Site-level Celery tasks."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task
from django.contrib.auth import get_user_model


@shared_task(name="convgen_site.ping")
def ping(path: str) -> str:
    """Write 'pong <number of users>' to PATH: proves broker, worker and database all connect."""
    reply = f"pong {get_user_model().objects.count()}"
    Path(path).write_text(reply, encoding="utf-8")
    return reply
