"""Researcher pages for LoRA training runs: start (Celery, `gpu` queue), watch, cancel, resume."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from convgen_site.roles import researcher_required
from modeling.forms import TrainingForm
from modeling.jobs import job_dir, job_status, request_cancel, requeue, start_job
from modeling.models import Dataset, TrainingRun

# The loss chart's drawing area inside its SVG viewBox (CHART_W x CHART_H).
CHART_W, CHART_H = 640, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, 628, 12, 212


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def loss_chart(curve: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """SVG polyline points for the train and eval loss of a loss curve, on shared axes.

    Returns {"train", "eval"} as `points` strings, axis labels and point counts. Points without
    a finite value are skipped.
    """
    series: dict[str, list[tuple[float, float]]] = {"loss": [], "eval_loss": []}
    for point in curve:
        step = point.get("step")
        if not isinstance(step, int | float):
            continue
        for key, values in series.items():
            value = point.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                values.append((float(step), float(value)))
    every = series["loss"] + series["eval_loss"]
    chart: dict[str, Any] = {
        "width": CHART_W,
        "height": CHART_H,
        "left": PLOT_LEFT,
        "right": PLOT_RIGHT,
        "top": PLOT_TOP,
        "bottom": PLOT_BOTTOM,
        "middle": (PLOT_LEFT + PLOT_RIGHT) // 2,
        "train": "",
        "eval": "",
        "n_train": len(series["loss"]),
        "n_eval": len(series["eval_loss"]),
        "x_min": "",
        "x_max": "",
        "y_min": "",
        "y_max": "",
    }
    if not every:
        return chart
    x_lo = min(x for x, _ in every)
    x_hi = max(x for x, _ in every)
    y_lo = min(y for _, y in every)
    y_hi = max(y for _, y in every)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5

    def points(values: list[tuple[float, float]]) -> str:
        out = []
        for x, y in values:
            px = PLOT_LEFT + (x - x_lo) / (x_hi - x_lo) * (PLOT_RIGHT - PLOT_LEFT)
            py = PLOT_BOTTOM - (y - y_lo) / (y_hi - y_lo) * (PLOT_BOTTOM - PLOT_TOP)
            out.append(f"{px:.1f},{py:.1f}")
        return " ".join(out)

    chart.update(
        train=points(series["loss"]),
        eval=points(series["eval_loss"]),
        x_min=_fmt(x_lo),
        x_max=_fmt(x_hi),
        y_min=_fmt(y_lo),
        y_max=_fmt(y_hi),
    )
    return chart


def has_checkpoint(run: TrainingRun) -> bool:
    """Whether the run's output dir holds a checkpoint that `resume` can continue from."""
    folder = Path(run.output_dir) / "checkpoints" if run.output_dir else None
    return bool(folder and folder.is_dir() and any(folder.glob("checkpoint-*")))


@researcher_required
def training_new(request: HttpRequest) -> HttpResponse:
    from modeling.tasks import train_lora_task

    initial: dict[str, Any] = {}
    dataset_id = request.GET.get("dataset", "")
    if dataset_id.isdigit():
        initial["dataset"] = int(dataset_id)
    form = TrainingForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        dataset: Dataset = data["dataset"]
        run = start_job(
            TrainingRun,
            train_lora_task,
            path_field="output_dir",
            path=lambda r: job_dir(Path(settings.CONVGEN_RUNS_DIR) / "training", r),
            name=data["name"],
            dataset=dataset,
            base_model=data["base_model"],
            data_dir=dataset.output_dir,
            config=data["config"],
            created_by=request.user if request.user.is_authenticated else None,
        )
        return redirect("modeling:training_detail", pk=run.pk)
    return render(request, "modeling/training_new.html", {"form": form})


@researcher_required
def training_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    return render(
        request,
        "modeling/training_detail.html",
        {
            "run": run,
            "chart": loss_chart(run.loss_curve or []),
            "config": sorted((run.config or {}).items()),
            "metrics": sorted((run.metrics or {}).items()),
            "can_resume": has_checkpoint(run),
            "generation_runs": run.generation_runs.all()[:50],
        },
    )


def training_payload(run: TrainingRun) -> dict[str, Any]:
    return job_status(run) | {
        "step": run.step,
        "total_steps": run.total_steps,
        "loss_curve": run.loss_curve or [],
        "chart": loss_chart(run.loss_curve or []),
    }


@researcher_required
@require_GET
def training_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(training_payload(get_object_or_404(TrainingRun, pk=pk)))


@researcher_required
@require_POST
def training_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    request_cancel(get_object_or_404(TrainingRun, pk=pk))
    return redirect("modeling:training_detail", pk=pk)


@researcher_required
@require_POST
def training_resume(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-queue a failed or cancelled run: from its last checkpoint, or from the start."""
    from modeling.tasks import train_lora_task

    run = get_object_or_404(TrainingRun, pk=pk)
    resume = has_checkpoint(run)
    requeue(
        run,
        train_lora_task,
        config=(run.config or {}) | {"resume": resume},
        message="resumed" if resume else "restarted",
    )
    return redirect("modeling:training_detail", pk=pk)
