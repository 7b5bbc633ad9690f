"""manage.py import_ratings FILE.csv --study SLUG: long-format ratings, all rows or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.items import InputError
from annotation.models import Study
from annotation.rating_files import import_ratings


class Command(BaseCommand):
    help = (
        "Import ratings from a CSV with columns rater,item,target,criterion,score (e.g. a pilot "
        "study). A bad row is reported with its line number and nothing is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--study", required=True, help="slug of the study")
        parser.add_argument(
            "--create-raters", action="store_true", help="create unknown raters (no password)"
        )
        parser.add_argument(
            "--create-items", action="store_true", help="create unknown items (empty texts)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"--study {options['study']}: no such study")
        path: Path = options["file"]
        try:
            with path.open(encoding="utf-8-sig", newline="") as stream:
                summary = import_ratings(
                    study,
                    stream,
                    str(path),
                    create_raters=options["create_raters"],
                    create_items=options["create_items"],
                )
        except OSError as exc:
            raise CommandError(f"{path}: cannot be read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: is not UTF-8 text") from exc
        except InputError as exc:
            raise CommandError(f"nothing imported: {exc}") from exc
        self.stdout.write(
            f"imported {summary.ratings} ratings in {summary.assignments} assignments into "
            f"{study.slug} ({summary.raters_created} raters and {summary.items_created} items "
            "created)"
        )
        if summary.items_over_k:
            self.stderr.write(
                f"note: {summary.items_over_k} items now have more than "
                f"k={study.raters_per_item} completed ratings"
            )
