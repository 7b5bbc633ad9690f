"""``manage.py stats_report``: significance + agreement report from a study or a ratings CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from stats.ratings import RatingsError, Scale, read_ratings_csv
from stats.report import ReportSettings, build_report, to_csv, to_json_dict, to_text


class Command(BaseCommand):
    help = (
        "Question vs answer significance tests (Wilcoxon signed-rank on per-item means) and "
        "inter-rater agreement (Krippendorff's alpha, Fleiss' kappa, Gwet's AC2) for a study "
        "or a long-format CSV rater,item,target,criterion,score."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", metavar="SLUG", help="a study in the database")
        source.add_argument("--ratings-csv", metavar="FILE", help="long-format ratings CSV")
        parser.add_argument(
            "--scale", metavar="MIN-MAX", help="allowed scores for a CSV, e.g. 1-5 (default: "
            "the smallest to the largest score in the file)",
        )  # fmt: skip
        parser.add_argument(
            "--format", choices=["text", "json", "html", "csv"], default="text", help="output"
        )
        parser.add_argument("--output", metavar="FILE", help="write here instead of stdout")
        parser.add_argument(
            "--alternative", choices=["two-sided", "greater", "less"], default="two-sided",
            help="'greater': questions rated higher (default two-sided)",
        )  # fmt: skip
        parser.add_argument(
            "--zero-method", choices=["wilcox", "pratt", "zsplit"], default="wilcox",
            help="zero differences in the signed-rank test (default wilcox: dropped, as in R)",
        )  # fmt: skip
        parser.add_argument(
            "--bootstrap", type=int, default=1000, help="resamples for alpha's 95%% CI"
        )
        parser.add_argument(
            "--permutations", type=int, default=10_000, help="sign-flip Monte Carlo resamples"
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of bootstrap/permutations")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["bootstrap"] < 0 or opts["permutations"] < 1:
            raise CommandError("--bootstrap must be >= 0 and --permutations >= 1")
        settings = ReportSettings(
            alternative=opts["alternative"],
            zero_method=opts["zero_method"],
            n_bootstrap=opts["bootstrap"],
            n_permutations=opts["permutations"],
            seed=opts["seed"],
        )
        labels: dict[str, str] = {}
        systems = None
        title = None
        try:
            if opts["study"]:
                if opts["scale"]:
                    raise CommandError("--scale is for --ratings-csv; a study has its own scale")
                try:
                    from stats.sources import StudyNotFound, study_ratings
                except ImportError as exc:  # pragma: no cover - annotation app missing
                    raise CommandError(f"--study needs the annotation app: {exc}") from None
                try:
                    data = study_ratings(opts["study"])
                except StudyNotFound as exc:
                    raise CommandError(str(exc)) from None
                except DatabaseError as exc:
                    raise CommandError(
                        f"cannot read the database ({exc}); did you run manage.py migrate?"
                    ) from None
                table, labels, systems = data.table, data.scale_labels, data.labels
                source = f"study {data.slug}"
                title = f"Ratings report: {data.title or data.slug}"
            else:
                scale = None
                if opts["scale"]:
                    try:
                        scale = Scale.parse(opts["scale"])
                    except ValueError as exc:
                        raise CommandError(f"--scale: {exc}") from None
                path = Path(opts["ratings_csv"])
                table = read_ratings_csv(path, scale)
                source = str(path)
        except RatingsError as exc:
            raise CommandError(str(exc)) from None
        report = build_report(table, settings, source=source, labels=systems)
        fmt = opts["format"]
        if fmt == "json":
            out = json.dumps(to_json_dict(report), indent=2, ensure_ascii=False) + "\n"
        elif fmt == "csv":
            out = to_csv(report)
        elif fmt == "html":
            from stats.html import render_report_html

            out = render_report_html(report, labels, title)
        else:
            out = to_text(report)
        if opts["output"]:
            try:
                Path(opts["output"]).write_text(out, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {opts['output']}: {exc.strerror}") from None
            self.stderr.write(f"wrote {fmt} report to {opts['output']}")
        else:
            self.stdout.write(out, ending="")
