"""manage.py export_ratings --study SLUG --format csv|jsonl [--output FILE]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Study
from annotation.rating_files import export_ratings


class Command(BaseCommand):
    help = (
        "Export completed ratings in long format: rater,item,target,criterion,score plus source, "
        "attention_check, time_spent_ms, completed_at (the csv can be imported again)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--output", type=Path, help="file to write (default: stdout)")
        parser.add_argument("--include-attention-checks", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"--study {options['study']}: no such study")
        include = options["include_attention_checks"]
        output: Path | None = options["output"]
        if output is None:
            self.stdout.ending = ""  # the writers end their own lines
            count = export_ratings(study, options["format"], self.stdout, include)  # type: ignore[arg-type]
        else:
            try:
                with output.open("w", encoding="utf-8", newline="") as stream:
                    count = export_ratings(study, options["format"], stream, include)
            except OSError as exc:
                raise CommandError(f"--output {output}: {exc.strerror}") from exc
        self.stderr.write(f"exported {count} ratings of {study.slug}")
