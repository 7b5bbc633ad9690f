"""manage.py create_study: a study from generation runs and/or jsonl/csv item files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from annotation.items import (
    REFERENCE_SPLITS,
    InputError,
    ItemRow,
    block_key,
    read_item_file,
    reference_file_rows,
    rows_from_dataset,
    rows_from_generation_run,
)
from annotation.models import SCALE_PRESETS, Study
from annotation.studies import StudySpec, create_study
from modeling.models import Dataset, GenerationRun


class Command(BaseCommand):
    help = (
        "Create a blind rating study. Items come from --run (generation run ids) and --file "
        "(jsonl/csv with background, question, answer and optional id, source, attention_check, "
        "expected_<target>_<criterion>); several sources mix, and raters never see the source. "
        "--reference adds a prepared dataset's human-written conversations of the same "
        "Backgrounds (source 'reference'), so systems are compared on shared Backgrounds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True, help="short name used in links")
        parser.add_argument("--title", help="shown to raters (default: the slug)")
        parser.add_argument("--run", type=int, action="append", default=[], help="GenerationRun id")
        parser.add_argument("--file", type=Path, action="append", default=[], help="items file")
        parser.add_argument(
            "--reference",
            type=int,
            action="append",
            default=[],
            metavar="DATASET_ID",
            help="add the prepared dataset's reference conversations (the OIG question and answer) "
            "of the Backgrounds the other items have; all of them when there are no other items",
        )
        parser.add_argument(
            "--reference-split",
            choices=[*REFERENCE_SPLITS, "both"],
            default="both",
            help="which of the dataset's files to take reference conversations from",
        )
        parser.add_argument(
            "--reference-file",
            type=Path,
            action="append",
            default=[],
            help="jsonl of Backgrounds with human-written turns (or question/answer): reference "
            "items of the Backgrounds the other items have",
        )
        parser.add_argument(
            "--one-background-per-rater",
            action="store_true",
            help="no rater gets two items of the same Background (needs k raters per system "
            "and Background)",
        )
        parser.add_argument(
            "--attention-checks",
            type=Path,
            help="items file of attention checks with expected scores",
        )
        parser.add_argument("--scale", choices=sorted(SCALE_PRESETS), default="1-3")
        parser.add_argument("--k", type=int, default=3, help="raters per item")
        parser.add_argument("--items-per-rater", type=int, default=0, help="0 = no limit")
        parser.add_argument("--lease-seconds", type=int, default=1800)
        parser.add_argument("--seed", type=int, help="seeds the item order of every rater")
        parser.add_argument("--instructions", default="", help="text shown above the items")
        parser.add_argument("--instructions-file", type=Path, help="read instructions from a file")
        parser.add_argument(
            "--rater", action="append", default=[], help="username allowed to rate (default: all)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if Study.objects.filter(slug=options["slug"]).exists():
            raise CommandError(f"--slug: a study {options['slug']!r} exists already")
        if options["k"] < 1:
            raise CommandError("--k: needs at least one rater per item")
        rows: list[ItemRow] = []
        for run_id in options["run"]:
            run = GenerationRun.objects.filter(pk=run_id).first()
            if run is None:
                raise CommandError(f"--run {run_id}: no such generation run")
            run_rows = rows_from_generation_run(run)
            if not run_rows:
                raise CommandError(f"--run {run_id}: the run has no parsed conversations")
            rows.extend(run_rows)
        try:
            for path in options["file"]:
                rows.extend(read_item_file(path))
            blocks = {row.block or block_key(row.background) for row in rows} if rows else None
            splits = REFERENCE_SPLITS if options["reference_split"] == "both" else None
            for dataset_id in options["reference"]:
                dataset = Dataset.objects.filter(pk=dataset_id).first()
                if dataset is None:
                    raise CommandError(f"--reference {dataset_id}: no such prepared dataset")
                ref = rows_from_dataset(dataset, splits or [options["reference_split"]], blocks)
                if not ref:
                    raise CommandError(
                        f"--reference {dataset_id}: no reference conversation of these Backgrounds"
                    )
                rows.extend(ref)
            for path in options["reference_file"]:
                rows.extend(reference_file_rows(Path(path), blocks))  # call_command passes str
            if options["attention_checks"]:
                check_rows = read_item_file(options["attention_checks"])
                rows.extend(
                    ItemRow(**{**row.__dict__, "is_attention_check": True}) for row in check_rows
                )
        except InputError as exc:
            raise CommandError(str(exc)) from exc
        if not rows:
            raise CommandError("no items: give --run and/or --file")
        instructions = options["instructions"]
        if options["instructions_file"]:
            try:
                instructions = options["instructions_file"].read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"--instructions-file: {exc.strerror}") from exc
        raters = []
        user_model = get_user_model()
        for name in options["rater"]:
            user = user_model.objects.filter(**{user_model.USERNAME_FIELD: name}).first()
            if user is None:
                raise CommandError(f"--rater {name}: no such user")
            raters.append(user)
        spec = StudySpec(
            title=options["title"] or options["slug"],
            slug=options["slug"],
            instructions=instructions,
            scale=options["scale"],
            raters_per_item=options["k"],
            items_per_rater=options["items_per_rater"],
            lease_seconds=options["lease_seconds"],
            seed=options["seed"],
            one_background_per_rater=options["one_background_per_rater"],
        )
        try:
            study = create_study(spec, rows)
        except (ValidationError, IntegrityError) as exc:
            raise CommandError(f"cannot create the study: {exc}") from exc
        study.raters.set(raters)
        sources = sorted({row.source for row in rows})
        checks = sum(row.is_attention_check for row in rows)
        n_blocks = study.items.exclude(block="").values("block").distinct().count()
        self.stdout.write(
            f"created study {study.slug}: {len(rows)} items ({checks} attention checks) "
            f"from {len(sources)} source(s), k={study.raters_per_item}, seed={study.seed}; "
            f"{n_blocks} Background(s)"
            + (", one Background per rater" if study.one_background_per_rater else "")
        )
