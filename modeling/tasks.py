"""Celery tasks for the modeling app: each is a few lines around a tested service function.

Long jobs store status, progress and errors on their database row (results are ignored), so a
task logs a failure instead of re-raising it: the row already says what went wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from modeling.models import Dataset, GenerationRun, TrainingRun

log = logging.getLogger(__name__)


# --- data preparation -------------------------------------------------------------------------


@shared_task(name="modeling.tasks.prepare_data_task")
def prepare_data_task(
    dataset_id: int, input_path: str, output_dir: str, options: dict[str, Any] | None = None
) -> None:
    """Prepare an OIG file into a Dataset row's directory (options: `run_prepare` keywords)."""
    from modeling.prepare_service import run_prepare

    dataset = Dataset.objects.get(pk=dataset_id)
    if dataset.is_finished:  # cancelled while it waited in the queue
        return
    try:
        run_prepare(dataset, input_path=input_path, output_dir=output_dir, **(options or {}))
    except Exception:
        log.exception("dataset %s: preparation failed", dataset_id)


# --- training ---------------------------------------------------------------------------------


@shared_task(name="modeling.tasks.train_lora_task")
def train_lora_task(run_id: int) -> None:
    """Train a TrainingRun's adapter (single process; routed to the `gpu` queue)."""
    from modeling.train_service import run_training

    run = TrainingRun.objects.get(pk=run_id)
    if run.is_finished:  # cancelled while it waited in the queue
        return
    try:
        run_training(run)
    except Exception:
        log.exception("training run %s failed", run_id)


# --- generation -------------------------------------------------------------------------------


@shared_task(name="modeling.tasks.generate_task")
def generate_task(run_id: int) -> None:
    """Run a generation; with n_shards > 1, fan out one shard task per shard instead."""
    from modeling.generate_service import run_generation, start_shards

    run = GenerationRun.objects.get(pk=run_id)
    if run.is_finished:  # cancelled while it waited in the queue
        return
    try:
        if run.n_shards > 1:
            start_shards(run)
            for index in range(run.n_shards):
                generate_shard_task.delay(run_id, index, run.n_shards)
        else:
            run_generation(run)
    except Exception:
        log.exception("generation run %s failed", run_id)


@shared_task(name="modeling.tasks.generate_shard_task")
def generate_shard_task(run_id: int, shard_index: int, n_shards: int) -> None:
    """Generate one shard; the last shard to finish merges the shards in input order."""
    from modeling.generate_service import run_generation_shard

    try:
        run_generation_shard(GenerationRun.objects.get(pk=run_id), shard_index, n_shards)
    except Exception:
        log.exception("generation run %s shard %s failed", run_id, shard_index)
