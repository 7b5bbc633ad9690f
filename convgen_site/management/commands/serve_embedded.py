"""Serve the site with a Celery worker beside it, on the embedded default (no servers needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the development web server and a Celery worker (queues default and gpu) together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="serve without a worker")

    def handle(self, *args: Any, **options: Any) -> None:
        worker: subprocess.Popen[bytes] | None = None
        if not options["no_worker"]:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "convgen_site", "worker",
                 "-Q", "default,gpu", "--concurrency", "1", "--loglevel", "INFO"],
                env=os.environ.copy(),
            )  # fmt: skip
            self.stdout.write(f"Celery worker started (pid {worker.pid}) on queues default,gpu")
        try:
            self.stdout.write(f"Serving on http://{options['addrport']}/ (Ctrl-C stops both)")
            call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
