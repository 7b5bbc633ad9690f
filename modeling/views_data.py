"""Researcher pages for datasets: upload an OIG file, prepare it (Celery), watch, cancel."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import get_valid_filename
from django.views.decorators.http import require_GET, require_POST

from convgen_site.roles import researcher_required
from modeling.forms import DatasetUploadForm
from modeling.models import Dataset

MALFORMED_SHOWN = 200


def store_oig_upload(upload: UploadedFile) -> Path:
    """Save an uploaded OIG file as DATA_DIR/uploads/<uuid>-<safe name>, streamed, never over
    an existing file."""
    name = get_valid_filename(Path(upload.name or "oig.jsonl").name) or "oig.jsonl"
    folder = Path(settings.CONVGEN_DATA_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{uuid.uuid4().hex}-{name}"
    with dest.open("xb") as fh:  # "x": fails rather than overwrite
        for chunk in upload.chunks():
            fh.write(chunk)
    return dest


@researcher_required
def dataset_new(request: HttpRequest) -> HttpResponse:
    from modeling.tasks import prepare_data_task

    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        source = store_oig_upload(data["file"])
        stem = Path(data["file"].name or "oig").stem
        dataset = Dataset.objects.create(
            name=data["name"] or stem,
            source_path=str(source),
            output_dir="",
            created_by=request.user if request.user.is_authenticated else None,
        )
        folder = get_valid_filename(stem)[:80] or "dataset"
        # The uuid keeps a reset database (reused ids) from pointing at an old directory.
        unique = f"{dataset.pk}-{uuid.uuid4().hex[:8]}-{folder}"
        out = Path(settings.CONVGEN_DATA_DIR) / "datasets" / unique
        Dataset.objects.filter(pk=dataset.pk).update(output_dir=str(out))
        result = prepare_data_task.delay(dataset.pk, str(source), str(out), form.prepare_options())
        Dataset.objects.filter(pk=dataset.pk).update(celery_task_id=result.id or "")
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
    return {
        "id": dataset.pk,
        "status": dataset.status,
        "status_display": str(dataset.get_status_display()),
        "progress": dataset.progress,
        "message": dataset.message,
        "error": dataset.error,
        "n_train": dataset.n_train,
        "n_val": dataset.n_val,
        "is_finished": dataset.is_finished,
        "cancel_requested": dataset.cancel_requested,
    }


@researcher_required
@require_GET
def dataset_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(dataset_payload(get_object_or_404(Dataset, pk=pk)))


@researcher_required
@require_POST
def dataset_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    from modeling.jobs import request_cancel

    request_cancel(get_object_or_404(Dataset, pk=pk))
    return redirect("modeling:dataset_detail", pk=pk)
