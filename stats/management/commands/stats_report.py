"""``manage.py stats_report``: significance + agreement report from a study or a ratings CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stats.command_input import add_source_arguments, ratings_from_options
from stats.report import ReportSettings, build_report, to_csv, to_json_dict, to_text


class Command(BaseCommand):
    help = (
        "Question vs answer significance tests (Wilcoxon signed-rank on per-item means) and "
        "inter-rater agreement (Krippendorff's alpha, Fleiss' kappa, Gwet's AC2) for a study "
        "or a long-format CSV rater,item,target,criterion,score."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_source_arguments(parser)
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
        data = ratings_from_options(opts)
        table, labels = data.table, data.scale_labels
        if opts["study"]:
            source, title = f"study {data.slug}", f"Ratings report: {data.title or data.slug}"
            systems = data.labels
        else:
            source, title, systems = str(opts["ratings_csv"]), None, None
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
