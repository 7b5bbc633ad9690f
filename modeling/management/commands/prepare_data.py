"""`manage.py prepare_data INPUT.jsonl --output-dir DIR`: OIG lines -> train/val records."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from modeling.models import Dataset, RunStatus
from modeling.oig.prepare import MalformedLineError
from modeling.prepare_service import run_prepare


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise ValueError("must be in [0, 1)")
    return value


class Command(BaseCommand):
    help = (
        "Clean, deduplicate and split an OIG unified_abstract_infill.jsonl file into train.jsonl, "
        "val.jsonl and manifest.json, recording a Dataset row."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("input", help="OIG JSON lines file (each line has a 'text' field)")
        parser.add_argument(
            "--output-dir", default="", help="where to write (default: CONVGEN_DATA_DIR/<name>)"
        )
        parser.add_argument("--name", default="", help="Dataset name (default: output dir name)")
        parser.add_argument(
            "--val-fraction", type=_fraction, default=0.05, help="share of records for val.jsonl"
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the hash-based split")
        parser.add_argument("--limit", type=int, default=None, help="read only the first N lines")
        parser.add_argument(
            "--on-error",
            choices=["skip", "fail"],
            default="skip",
            help="malformed lines: skip and list them in the manifest, or stop at the first",
        )
        parser.add_argument(
            "--near-dup-threshold",
            type=float,
            default=0.8,
            help="drop records whose estimated Jaccard similarity to a kept one is >= this",
        )
        parser.add_argument(
            "--no-near-dup", action="store_true", help="keep near duplicates (exact ones still go)"
        )
        parser.add_argument("--tokenizer", default=None, help="local HF tokenizer dir or file")
        parser.add_argument(
            "--max-tokens",
            type=int,
            default=None,
            help="drop records whose training text is longer than N tokens (needs --tokenizer)",
        )
        parser.add_argument(
            "--overwrite", action="store_true", help="replace a non-empty output directory"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="extra processes that parse and clean (0: none, -1: one per CPU but one); "
            "the output is the same",
        )
        parser.add_argument("--dataset-id", type=int, default=0, help="use this Dataset row")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **opts: Any) -> None:
        source = Path(opts["input"])
        if not source.is_file():
            raise CommandError(f"{source}: no such file")
        if opts["max_tokens"] is not None and not opts["tokenizer"]:
            raise CommandError("--max-tokens needs --tokenizer")
        if opts["limit"] is not None and opts["limit"] < 0:
            raise CommandError("--limit must be >= 0")
        if opts["workers"] < -1:
            raise CommandError("--workers must be >= -1")
        name = opts["name"] or source.stem
        output_dir = Path(opts["output_dir"] or Path(settings.CONVGEN_DATA_DIR) / name)
        dataset = self._row(opts["dataset_id"], name)

        bar = tqdm(
            total=100,
            unit="%",
            desc="prepare_data",
            disable=opts["no_progress"],
            bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}",
        )

        def on_progress(fraction: float, message: str) -> None:
            bar.update(fraction * 100 - bar.n)
            bar.set_postfix_str(message, refresh=False)

        try:
            dataset = run_prepare(
                dataset,
                input_path=source,
                output_dir=output_dir,
                on_progress=on_progress,
                val_fraction=opts["val_fraction"],
                seed=opts["seed"],
                limit=opts["limit"],
                on_error=opts["on_error"],
                near_dup_threshold=None if opts["no_near_dup"] else opts["near_dup_threshold"],
                tokenizer=opts["tokenizer"],
                max_tokens=opts["max_tokens"],
                overwrite=opts["overwrite"],
                workers=opts["workers"],
            )
        except MalformedLineError as exc:
            raise CommandError(f"malformed line {exc.line} in {exc.path}: {exc.detail}") from exc
        except (OSError, ValueError) as exc:
            raise CommandError(f"{source}: {exc}") from exc
        finally:
            bar.close()
        if dataset.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Dataset {dataset.pk} ended {dataset.status}: {dataset.message}")
        self.stdout.write(
            self.style.SUCCESS(f"Dataset {dataset.pk} ({dataset.name}) in {dataset.output_dir}")
        )
        self.stdout.write(dataset.message)

    def _row(self, dataset_id: int, name: str) -> Dataset:
        if not dataset_id:
            return Dataset.objects.create(name=name)
        dataset = Dataset.objects.filter(pk=dataset_id).first()
        if dataset is None:
            raise CommandError(f"--dataset-id {dataset_id}: no such Dataset")
        dataset.cancel_requested = False
        dataset.save(update_fields=["cancel_requested"])
        return dataset
