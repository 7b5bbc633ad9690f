"""Run a TrainingRun row: config from the row, progress, loss curve and cancel into the database.

Thin Django layer over `modeling.training`; the Celery task and the `train_lora` command call
`run_training`. Only rank 0 of a distributed launch may call it (other ranks call the core).
"""

from __future__ import annotations

import time
from typing import Any

from modeling.jobs import Cancelled, execute_job
from modeling.models import TrainingRun
from modeling.training import TrainConfig, TrainResult, train

__all__ = ["DatabaseHooks", "config_for", "run_training"]


class DatabaseHooks:
    """Writes progress and loss points to the row; asks the row whether to stop."""

    def __init__(self, run: TrainingRun, min_interval_s: float = 1.0) -> None:
        self.run = run
        self.min_interval_s = min_interval_s  # a 7B step takes seconds; tiny CPU steps do not
        self._last = 0.0
        self.curve: list[dict[str, float]] = []

    def on_log(self, point: dict[str, float]) -> None:
        self.curve.append(point)
        TrainingRun.objects.filter(pk=self.run.pk).update(loss_curve=self.curve)

    def on_step(self, step: int, total_steps: int) -> bool:
        now = time.monotonic()
        if step < total_steps and now - self._last < self.min_interval_s:
            return False
        self._last = now
        TrainingRun.objects.filter(pk=self.run.pk).update(step=step, total_steps=total_steps)
        return self.run.report_progress(step / max(total_steps, 1), f"step {step}/{total_steps}")


def config_for(run: TrainingRun) -> TrainConfig:
    """The run's TrainConfig: run.config plus the row's base model, data and output paths."""
    data: dict[str, Any] = dict(run.config or {})
    data.update(base_model=run.base_model, data_dir=run.data_dir, output_dir=run.output_dir)
    return TrainConfig.from_dict(data)


def run_training(run: TrainingRun) -> TrainingRun:
    """Train the run's adapter, keeping status, progress, loss curve and metrics on the row."""

    def work(job: TrainingRun) -> str:
        config = config_for(job)
        # Store the full config (defaults included) so the row alone says how it was trained.
        TrainingRun.objects.filter(pk=job.pk).update(config=config.to_dict())
        # A resumed run's earlier points come back from the checkpoint with the final result.
        hooks = DatabaseHooks(job)
        result: TrainResult = train(config, hooks)
        TrainingRun.objects.filter(pk=job.pk).update(
            step=result.global_step,
            total_steps=result.total_steps,
            loss_curve=result.loss_curve,
            metrics={**result.metrics, "resumed_from": result.info["resumed_from"]},
        )
        job.refresh_from_db()
        if result.status == "cancelled":
            raise Cancelled()
        eval_loss = result.metrics.get("eval_loss")
        tail = f"; eval loss {eval_loss:.4f}" if eval_loss is not None else ""
        return f"adapter in {result.output_dir} after {result.global_step} steps{tail}"

    return execute_job(run, work)
