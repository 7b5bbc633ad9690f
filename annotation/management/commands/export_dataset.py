"""`manage.py export_dataset`: generated conversations as OIG text or chat `messages` jsonl.

In the annotation app because it can keep only conversations rated well enough.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import rated_export
from modeling import export
from modeling.export import ExportCounts, ExportError
from modeling.generation import read_records
from modeling.models import GenerationRun


def parse_min_ratings(values: Sequence[str]) -> dict[str, float]:
    """`correctness=2.5` -> {"correctness": 2.5}; a clear error for anything else."""
    try:
        return rated_export.parse_min_ratings(values)
    except ExportError as exc:
        raise CommandError(f"--min-rating {exc}") from None


class Command(BaseCommand):
    help = "Export generated conversations (OIG text or chat messages), optionally rating-filtered."

    def add_arguments(self, parser: CommandParser) -> None:
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument("--run", type=int, help="GenerationRun id")
        src.add_argument("--input", help="records jsonl written by `generate`")
        parser.add_argument("--format", choices=export.FORMATS, default="oig")
        parser.add_argument("--output", required=True, help="output .jsonl")
        parser.add_argument(
            "--min-rating",
            action="append",
            default=[],
            metavar="CRITERION=VALUE",
            help="keep conversations whose mean rating for CRITERION is >= VALUE (repeatable)",
        )
        parser.add_argument(
            "--target",
            choices=tuple(rated_export.RATED_TARGETS),
            default="answer",
            help="whose ratings count; 'both' needs question and answer to pass",
        )
        parser.add_argument(
            "--only-parse-ok",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="drop conversations whose parsing failed (default: on)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        run: GenerationRun | None = None
        if opts["run"] is not None:
            try:
                run = GenerationRun.objects.get(pk=opts["run"])
            except GenerationRun.DoesNotExist:
                raise CommandError(f"--run {opts['run']}: no such generation run") from None
            records = list(export.run_records(run))
        else:
            if not Path(opts["input"]).is_file():
                raise CommandError(f"{opts['input']}: no such file")
            try:
                records = read_records(opts["input"])
            except (OSError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            for lineno, rec in enumerate(records, 1):
                missing = [k for k in ("id", "background", "turns") if k not in rec]
                if missing:
                    raise CommandError(f"{opts['input']}:{lineno}: missing field(s) {missing}")

        thresholds = parse_min_ratings(opts["min_rating"])
        means: dict[tuple[str, str, str], float] = {}
        if thresholds:
            candidates = (
                r["id"] for r in records if r.get("parse_ok") or not opts["only_parse_ok"]
            )
            means = rated_export.rating_means(candidates, run, thresholds)
            if not means:
                where = f"run {run.pk}" if run else opts["input"]
                raise CommandError(
                    f"no ratings for {sorted(thresholds)} on the conversations of {where}: "
                    "is there a study whose items link to them?"
                )

        counts = ExportCounts()
        try:
            keep = rated_export.rating_filter(thresholds, opts["target"], means)
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        selected = export.select_records(
            records, only_parse_ok=opts["only_parse_ok"], keep=keep, counts=counts
        )
        out = Path(opts["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            fh.writelines(export.export_lines(selected, opts["format"]))
        self.stdout.write(
            f"wrote {counts.n_out} of {counts.n_in} conversations to {out} "
            f"(dropped: {counts.n_parse} parse failures, {counts.n_rating} below the rating "
            "threshold)"
        )
