"""``manage.py plan_study``: how many items and raters per item the next study needs."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stats.command_input import add_source_arguments, ratings_from_options
from stats.planning import DEFAULT_ITEMS, DEFAULT_RATERS
from stats.ratings import TARGETS
from stats.study_plan import DIFFERENCES, plan_from_table, plan_text


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise CommandError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise CommandError(f"expected positive whole numbers, got {text!r}")
    return values


class Command(BaseCommand):
    help = (
        "Plan a study: estimate the item and rater variance from a finished study or a ratings "
        "CSV, then simulate (seeded) the power of the Wilcoxon signed-rank test for a difference "
        "you name over a grid of items x raters per item, and print the smallest design that "
        "reaches the power asked for."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_source_arguments(parser)
        parser.add_argument("--scale", metavar="MIN-MAX", help="allowed scores of a CSV")
        parser.add_argument(
            "--delta", type=float, default=0.2, help="difference to detect, in scale points "
            "(default 0.2)",
        )  # fmt: skip
        parser.add_argument("--power", type=float, default=0.8, help="target power (0.8)")
        parser.add_argument("--alpha", type=float, default=0.05, help="significance level")
        parser.add_argument(
            "--alternative", choices=["two-sided", "greater", "less"], default="two-sided"
        )
        parser.add_argument(
            "--criterion", default="", help="criterion (default: correctness, else the first)"
        )
        parser.add_argument(
            "--difference", choices=DIFFERENCES, default="systems",
            help="systems: two systems on shared Backgrounds, on --target (default); "
            "question-answer: questions against answers",
        )  # fmt: skip
        parser.add_argument(
            "--target", choices=TARGETS, default="answer", help="for --difference systems"
        )
        parser.add_argument(
            "--items", default=",".join(map(str, DEFAULT_ITEMS)), help="grid: numbers of items"
        )
        parser.add_argument(
            "--raters", default=",".join(map(str, DEFAULT_RATERS)), help="grid: raters per item"
        )
        parser.add_argument(
            "--simulations", type=int, default=1000, help="replicates per design (1000)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--model", choices=["normal", "integer"], default="normal",
            help="normal item means, or integer scores rounded per rater (ties, zeros)",
        )  # fmt: skip
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["simulations"] < 1:
            raise CommandError("--simulations must be at least 1")
        table = ratings_from_options(opts).table
        criterion = opts["criterion"] or (
            "correctness" if "correctness" in table.criteria else table.criteria[0]
        )
        try:
            result = plan_from_table(
                table,
                criterion,
                opts["delta"],
                difference=opts["difference"],
                target=opts["target"],
                items=_int_list(opts["items"]),
                raters=_int_list(opts["raters"]),
                power=opts["power"],
                alpha=opts["alpha"],
                alternative=opts["alternative"],
                n_simulations=opts["simulations"],
                seed=opts["seed"],
                model=opts["model"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["format"] == "json":
            self.stdout.write(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        else:
            self.stdout.write(plan_text(result), ending="")
