"""The ratings a `stats_report` or `plan_study` run reads: a study (`--study`) or a CSV
(`--ratings-csv`, with an optional `--scale`), with the same checks and errors for both commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from stats.ratings import RatingsError, Scale, read_ratings_csv
from stats.sources import StudyNotFound, StudyRatings, study_ratings

__all__ = ["add_source_arguments", "ratings_from_options"]


def add_source_arguments(parser: CommandParser) -> None:
    """--study SLUG or --ratings-csv FILE (one of them, required)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--study", metavar="SLUG", help="a study in the database")
    source.add_argument("--ratings-csv", metavar="FILE", help="long-format ratings CSV")


def ratings_from_options(opts: dict[str, Any]) -> StudyRatings:
    """The study's ratings, or the CSV's as a study without title, labels or systems."""
    try:
        if opts["study"]:
            if opts["scale"]:
                raise CommandError("--scale is for --ratings-csv; a study has its own scale")
            try:
                return study_ratings(opts["study"])
            except StudyNotFound as exc:
                raise CommandError(str(exc)) from None
            except DatabaseError as exc:
                raise CommandError(
                    f"cannot read the database ({exc}); did you run manage.py migrate?"
                ) from None
        scale = None
        if opts["scale"]:
            try:
                scale = Scale.parse(opts["scale"])
            except ValueError as exc:
                raise CommandError(f"--scale: {exc}") from None
        path = Path(opts["ratings_csv"])
        return StudyRatings(slug="", title="", table=read_ratings_csv(path, scale))
    except RatingsError as exc:
        raise CommandError(str(exc)) from None
