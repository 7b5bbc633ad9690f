"""`manage.py export_dataset`: generated conversations as OIG text or chat `messages` jsonl."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modeling.generation import read_records, to_messages, to_oig
from modeling.models import Conversation, GenerationRun

TARGETS = {"question": ("question",), "answer": ("answer",), "both": ("question", "answer")}


def parse_min_ratings(values: Sequence[str]) -> dict[str, float]:
    """`correctness=2.5` -> {"correctness": 2.5}; a clear error for anything else."""
    out: dict[str, float] = {}
    for raw in values:
        name, sep, value = raw.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise CommandError(f"--min-rating {raw!r}: expected CRITERION=NUMBER") from None
    return out


def _record(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.record_id,
        "background": conv.background,
        "question": conv.question,
        "answer": conv.answer,
        "turns": conv.turns,
        "parse_ok": conv.parse_ok,
    }


def rating_means(
    record_ids: Iterable[str], run: GenerationRun | None, criteria: Iterable[str]
) -> dict[tuple[str, str, str], float]:
    """{(record_id, target, criterion): mean score} over completed, non-attention-check items."""
    try:
        from annotation.models import Rating
    except ImportError as exc:  # the annotation app is optional for generation-only installs
        raise CommandError("rating filters need the annotation app") from exc
    from django.db.models import Avg

    convs = Conversation.objects.filter(record_id__in=list(record_ids))
    if run is not None:
        convs = convs.filter(run=run)
    rows = (
        Rating.objects.filter(
            assignment__item__conversation__in=convs,
            assignment__item__is_attention_check=False,
            criterion__in=list(criteria),
        )
        .values("assignment__item__conversation__record_id", "target", "criterion")
        .annotate(mean=Avg("score"))
    )
    return {
        (r["assignment__item__conversation__record_id"], r["target"], r["criterion"]): float(
            r["mean"]
        )
        for r in rows
    }


class Command(BaseCommand):
    help = "Export generated conversations (OIG text or chat messages), optionally rating-filtered."

    def add_arguments(self, parser: CommandParser) -> None:
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument("--run", type=int, help="GenerationRun id")
        src.add_argument("--input", help="records jsonl written by `generate`")
        parser.add_argument("--format", choices=("oig", "messages"), default="oig")
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
            choices=tuple(TARGETS),
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
            records = [_record(c) for c in run.conversations.order_by("position", "sample_index")]
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

        n_in = len(records)
        if opts["only_parse_ok"]:
            records = [r for r in records if r.get("parse_ok")]
        n_parse = n_in - len(records)

        thresholds = parse_min_ratings(opts["min_rating"])
        n_rating = 0
        if thresholds:
            means = rating_means((r["id"] for r in records), run, thresholds)
            if not means:
                where = f"run {run.pk}" if run else opts["input"]
                raise CommandError(
                    f"no ratings for {sorted(thresholds)} on the conversations of {where}: "
                    "is there a study whose items link to them?"
                )
            by_record: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
            for (rid, target, criterion), mean in means.items():
                by_record[rid][(target, criterion)] = mean
            targets = TARGETS[opts["target"]]
            kept = []
            for r in records:
                got = by_record.get(r["id"], {})
                # Unrated conversations cannot show they pass, so they are left out.
                if all(
                    got.get((t, c), float("-inf")) >= v
                    for c, v in thresholds.items()
                    for t in targets
                ):
                    kept.append(r)
            n_rating = len(records) - len(kept)
            records = kept

        convert = to_oig if opts["format"] == "oig" else to_messages
        out = Path(opts["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(convert(r), ensure_ascii=False) + "\n")
        self.stdout.write(
            f"wrote {len(records)} of {n_in} conversations to {out} "
            f"(dropped: {n_parse} parse failures, {n_rating} below the rating threshold)"
        )
