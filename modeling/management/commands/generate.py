"""`manage.py generate`: conversations for a file of Backgrounds, with a diversity summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modeling.diversity import format_report
from modeling.generation import (
    BackgroundFileError,
    GenerationParams,
    params_hash,
    read_backgrounds,
    read_records,
)
from modeling.jobs import enqueue
from modeling.models import GenerationRun, RunStatus
from modeling.options import add_dataclass_arguments, from_options


class Command(BaseCommand):
    help = "Generate <human>/<bot> conversations for Backgrounds with a base model + LoRA adapter."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-model", required=True, help="base model path or hub id")
        parser.add_argument("--adapter", default="", help="LoRA adapter directory (optional)")
        parser.add_argument("--input", required=True, help="Backgrounds: .jsonl, .csv or .txt")
        parser.add_argument("--output", required=True, help="output records (.jsonl)")
        parser.add_argument("--name", default="", help="run name shown in the web UI")
        # --ban-phrase is repeatable: one phrase never to generate each time.
        add_dataclass_arguments(parser, GenerationParams, flags={"ban_phrases": "--ban-phrase"})
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
        parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
        parser.add_argument(
            "--no-merge", action="store_true", help="keep LoRA unmerged (slower decoding)"
        )
        parser.add_argument("--resume", action="store_true", help="skip Backgrounds in OUTPUT")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
        parser.add_argument(
            "--shards", type=int, default=1, help="split into N contiguous shards, merged in order"
        )
        parser.add_argument(
            "--celery",
            action="store_true",
            help="enqueue on the Celery 'gpu' queue (one task per shard) instead of running here",
        )

    def _check_resumable(self, out: Path, params: GenerationParams) -> None:
        """Refuse to mix records made with other settings into one file (their ids differ)."""
        try:
            first = next(iter(read_records(out)), None)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if first is None:
            return
        try:
            theirs = params_hash(GenerationParams.from_dict(first.get("params") or {}))
        except (TypeError, ValueError):
            theirs = ""
        if theirs != params_hash(params):
            raise CommandError(
                f"{out}:1: written with other generation settings than these; "
                "resume with the same settings or write to a new file"
            )

    def handle(self, *args: Any, **opts: Any) -> None:
        from modeling import generate_service
        from modeling.tasks import generate_task

        try:
            params = from_options(GenerationParams, opts)
        except (TypeError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        try:
            n = len(read_backgrounds(opts["input"]))
        except BackgroundFileError as exc:
            raise CommandError(str(exc)) from exc
        if n == 0:
            raise CommandError(f"{opts['input']}: no Backgrounds")
        out = Path(opts["output"]).resolve()
        if opts["resume"] and opts["overwrite"]:
            raise CommandError("--resume and --overwrite exclude each other")
        if out.exists() and out.stat().st_size and not (opts["resume"] or opts["overwrite"]):
            raise CommandError(f"{out} exists: pass --resume to continue it or --overwrite")
        if opts["shards"] < 1:
            raise CommandError("--shards must be >= 1")
        if opts["resume"] and out.exists():
            self._check_resumable(out, params)

        run_params = params.to_dict() | {
            "device": opts["device"],
            "dtype": opts["dtype"],
            "merge": not opts["no_merge"],
            "resume": bool(opts["resume"]),
        }
        run = None
        if opts["resume"]:
            # Continue the latest run that wrote this file, so its rows and progress carry on.
            run = GenerationRun.objects.filter(output_path=str(out)).order_by("-created_at").first()
        if run is None:
            run = GenerationRun(output_path=str(out))
        run.name = opts["name"] or run.name or out.stem
        run.base_model = opts["base_model"]
        run.adapter = opts["adapter"]
        run.input_path = str(Path(opts["input"]).resolve())
        run.params = run_params
        run.n_shards = opts["shards"]
        run.n_total = n
        run.status = RunStatus.QUEUED
        run.cancel_requested = False
        run.save()

        if opts["celery"]:
            enqueue(run, generate_task, run.pk)
            self.stdout.write(f"queued generation run {run.pk}")
            return
        try:
            if run.n_shards > 1:
                generate_service.start_shards(run)
                for index in range(run.n_shards):
                    run = generate_service.run_generation_shard(run, index, run.n_shards)
            else:
                run = generate_service.run_generation(run)
        except Exception as exc:
            raise CommandError(f"generation run {run.pk} failed: {exc}") from exc
        self.stdout.write(f"generation run {run.pk}: {run.get_status_display()}, wrote {out}")
        if run.diversity:
            self.stdout.write(format_report(run.diversity))
