"""`manage.py reap_jobs [--stale-minutes N]`: mark orphaned running jobs failed (for cron).

Run it on every host that runs jobs (web and GPU hosts): a job whose process on this host is gone
is marked failed at once; a job of any host whose heartbeat is older than N minutes as well. Both
can then be resumed from their last checkpoint.
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from modeling.jobs import DEFAULT_STALE_AFTER, reap_dead_workers, reap_stale_jobs


class Command(BaseCommand):
    help = "Mark running jobs whose worker died (or went silent) as failed, so they can be resumed."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--stale-minutes",
            type=float,
            default=DEFAULT_STALE_AFTER.total_seconds() / 60,
            help="a running job without a heartbeat for this long is lost (default 10)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        minutes = opts["stale_minutes"]
        if minutes <= 0:
            raise CommandError("--stale-minutes must be > 0")
        dead = reap_dead_workers()
        stale = reap_stale_jobs(timedelta(minutes=minutes))
        self.stdout.write(
            f"reaped {dead + stale} job(s): {dead} with a dead process on this host, "
            f"{stale} without a heartbeat for {minutes:g} min"
        )
