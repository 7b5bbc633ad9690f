"""`manage.py train_lora --base-model M --data DIR --output-dir OUT`: train a LoRA adapter.

Works as a single process, under `torchrun --nproc_per_node N manage.py train_lora ...`, or with
`--nproc N` (re-launches itself through torch.distributed.run). Only rank 0 touches the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from modeling.models import RunStatus, TrainingRun
from modeling.train_service import run_training
from modeling.training import TrainConfig, preflight, train, world_info


class Command(BaseCommand):
    help = "Fine-tune a LoRA adapter on prepared conversations (train.jsonl / val.jsonl)."
    # Ranks other than 0 must not touch the database, and system checks may.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        TrainConfig.add_arguments(parser, skip=("data_dir",))
        parser.add_argument(
            "--data",
            "--data-dir",
            dest="data_dir",
            required=True,
            help="directory with train.jsonl and val.jsonl from prepare_data",
        )
        parser.add_argument(
            "--nproc", type=int, default=1, help="processes (GPUs) on this host; >1 runs torchrun"
        )
        parser.add_argument("--name", default="", help="name of the TrainingRun row")
        parser.add_argument(
            "--run-id", type=int, default=0, help="use this existing TrainingRun row (internal)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        config = TrainConfig.from_options(opts)
        rank, _, world_size = world_info()
        if not config.output_dir:
            if world_size > 1 or opts["nproc"] > 1:
                raise CommandError("--output-dir is required for distributed runs")
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            config.output_dir = str(Path(settings.CONVGEN_RUNS_DIR) / f"train-{stamp}")
        try:
            # Everything that can refuse the run is checked before a TrainingRun row exists.
            preflight(config)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        if opts["nproc"] > 1 and "LOCAL_RANK" not in os.environ:
            self._launch(config, opts)
            return
        if rank != 0:
            try:
                train(config)  # no hooks: only rank 0 reports to the database
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            return
        run = self._row(config, opts)
        self.stdout.write(f"TrainingRun {run.pk}: training into {config.output_dir}")
        try:
            run = run_training(run)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # A cancelled run is a normal end (its checkpoint can be resumed); failures raise above.
        self.stdout.write(f"TrainingRun {run.pk}: {run.status}. {run.message}")

    def _row(self, config: TrainConfig, opts: dict[str, Any]) -> TrainingRun:
        """The run's row: given by --run-id, the interrupted one being resumed, or a new one."""
        fields = {
            "base_model": config.base_model,
            "data_dir": config.data_dir,
            "output_dir": config.output_dir,
            "config": config.to_dict(),
        }
        run: TrainingRun | None = None
        if opts["run_id"]:
            run = TrainingRun.objects.filter(pk=opts["run_id"]).first()
            if run is None:
                raise CommandError(f"--run-id {opts['run_id']}: no such TrainingRun")
        elif config.resume:
            run = TrainingRun.objects.filter(output_dir=config.output_dir).first()
        if run is None:
            return TrainingRun.objects.create(name=opts["name"], **fields)
        for key, value in fields.items():
            setattr(run, key, value)
        run.cancel_requested = False
        run.save()
        return run

    def _launch(self, config: TrainConfig, opts: dict[str, Any]) -> None:
        """Re-run this command under torch.distributed.run with `--nproc` processes."""
        run = self._row(config, opts)
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(opts["nproc"]),
            str(Path(settings.BASE_DIR) / "manage.py"),
            "train_lora",
            *config.to_argv(),
            "--run-id",
            str(run.pk),
        ]
        self.stdout.write(f"TrainingRun {run.pk}: launching {opts['nproc']} processes")
        code = subprocess.call(cmd)
        run.refresh_from_db()
        if code != 0:
            if not run.is_finished:
                run.finish(RunStatus.FAILED, error=f"torchrun exited with status {code}")
            raise CommandError(f"training run {run.pk} failed (torchrun exit status {code})")
        self.stdout.write(f"TrainingRun {run.pk}: {run.status}. {run.message}")
