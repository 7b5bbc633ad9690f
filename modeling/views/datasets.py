"""Researcher pages for datasets: upload an OIG file, prepare it (Celery), watch, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from convgen_site.roles import researcher_required
from convgen_site.uploads import safe_filename, store_upload
from modeling.forms import DatasetUploadForm
from modeling.jobs import job_dir, job_status, request_cancel, start_job
from modeling.models import Dataset

MALFORMED_SHOWN = 200


@researcher_required
def dataset_new(request: HttpRequest) -> HttpResponse:
    from modeling.tasks import prepare_data_task

    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        source = store_upload(
            data["file"], Path(settings.CONVGEN_DATA_DIR) / "uploads", "oig.jsonl"
        )
        stem = Path(data["file"].name or "oig").stem
        label = safe_filename(stem, "dataset")[:80]
        dataset = start_job(
            Dataset,
            prepare_data_task,
            path_field="output_dir",
            path=lambda d: job_dir(Path(settings.CONVGEN_DATA_DIR) / "datasets", d, label),
            task_args=lambda d: (d.pk, str(source), d.output_dir, form.prepare_options()),
            name=data["name"] or stem,
            source_path=str(source),
            created_by=request.user if request.user.is_authenticated else None,
        )
        return redirect("modeling:dataset_detail", pk=dataset.pk)
    return render(
        request,
        "modeling/dataset_new.html",
        {"form": form, "max_upload_bytes": settings.CONVGEN_MAX_UPLOAD_BYTES},
    )


def manifest_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the detail page shows of a manifest: counts, drops per reason, malformed lines."""
    counts = manifest.get("counts") or {}
    dropped = counts.get("dropped") or {}
    malformed = list(manifest.get("malformed_lines") or [])
    return {
        "lines_read": counts.get("lines_read"),
        "kept": counts.get("kept"),
        "train": counts.get("train"),
        "val": counts.get("val"),
        "dropped": [(reason, n) for reason, n in dropped.items() if n],
        "dropped_total": sum(dropped.values()),
        "malformed_lines": malformed[:MALFORMED_SHOWN],
        "malformed_more": len(malformed) > MALFORMED_SHOWN
        or bool(manifest.get("malformed_lines_truncated")),
        "options": sorted((manifest.get("options") or {}).items()),
        "sha256": (manifest.get("input") or {}).get("sha256", ""),
    }


@researcher_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=pk)
    return render(
        request,
        "modeling/dataset_detail.html",
        {
            "dataset": dataset,
            "summary": manifest_summary(dataset.manifest or {}) if dataset.manifest else None,
            "training_runs": dataset.training_runs.all()[:50],
        },
    )


def dataset_payload(dataset: Dataset) -> dict[str, Any]:
    return job_status(dataset) | {"n_train": dataset.n_train, "n_val": dataset.n_val}


@researcher_required
@require_GET
def dataset_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(dataset_payload(get_object_or_404(Dataset, pk=pk)))


@researcher_required
@require_POST
def dataset_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    request_cancel(get_object_or_404(Dataset, pk=pk))
    return redirect("modeling:dataset_detail", pk=pk)
