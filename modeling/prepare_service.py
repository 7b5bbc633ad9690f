"""Run a Dataset row: prepare an OIG file, keeping status, progress and the manifest on the row.

Thin Django layer over `modeling.oig.prepare`; the Celery task and the `prepare_data` command
call `run_prepare`. The core writes into a temporary directory and renames it into place only
on success, so a failed or cancelled run never loses an existing dataset directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modeling.jobs import Cancelled, execute_job
from modeling.models import Dataset
from modeling.oig.prepare import prepare

__all__ = ["Cancelled", "run_prepare"]

# prepare() keyword options a caller may pass through run_prepare(**options).
OPTION_NAMES = frozenset(
    {
        "val_fraction",
        "seed",
        "limit",
        "on_error",
        "near_dup_threshold",
        "tokenizer",
        "max_tokens",
        "overwrite",
        "workers",
    }
)


def run_prepare(
    dataset: Dataset,
    *,
    input_path: str | Path,
    output_dir: str | Path,
    on_progress: Callable[[float, str], None] | None = None,
    min_interval_s: float = 0.5,
    **options: Any,
) -> Dataset:
    """Prepare INPUT_PATH into OUTPUT_DIR for this row: running -> succeeded/failed/cancelled.

    `options` are `modeling.oig.prepare.prepare` keywords (val_fraction, seed, limit, on_error,
    near_dup_threshold, tokenizer, max_tokens, overwrite, workers). `on_progress` also sees every
    progress report (the command drives its terminal progress bar with it). Failures are
    stored on the row and re-raised.
    """
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown prepare options: {', '.join(sorted(unknown))}")
    dataset.source_path = str(input_path)
    dataset.output_dir = str(output_dir)
    if not dataset.name:
        dataset.name = Path(output_dir).name or Path(input_path).stem
    dataset.save(update_fields=["source_path", "output_dir", "name"])

    def work(job: Dataset) -> str:
        last = 0.0

        def report(fraction: float, message: str) -> bool:
            nonlocal last
            if on_progress is not None:
                on_progress(fraction, message)
            now = time.monotonic()
            # Two queries per report; a few per second is plenty for a progress bar.
            if fraction < 1.0 and now - last < min_interval_s:
                return False
            last = now
            return job.report_progress(fraction, message)

        result = prepare(input_path, output_dir, progress_callback=report, **options)
        job.input_sha256 = result.input_sha256
        job.n_train = result.n_train
        job.n_val = result.n_val
        job.manifest = result.manifest
        job.save(update_fields=["input_sha256", "n_train", "n_val", "manifest"])
        return result.summary()

    return execute_job(dataset, work)
