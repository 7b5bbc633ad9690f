"""Researcher pages for generation runs: start (Celery, `gpu` queue), watch, cancel, resume.

The run page's rating studies and its (rating-filtered) export come from the annotation app,
through the `run_ratings` template tag and the `generation_export` view it provides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from convgen_site.roles import researcher_required
from convgen_site.uploads import store_upload
from modeling.forms import GenerationForm
from modeling.generation import BackgroundFileError, GenerationParams, read_backgrounds
from modeling.jobs import job_status, request_cancel, requeue, start_job
from modeling.models import GenerationRun, TrainingRun

SAMPLE_SIZE = 20


def adapter_of(run: TrainingRun) -> str:
    """The adapter directory a training run wrote (its output dir, or an `adapter/` inside)."""
    out = Path(run.output_dir)
    for candidate in (out, out / "adapter", out / "final"):
        if (candidate / "adapter_config.json").exists():
            return str(candidate)
    return str(out)


@researcher_required
def generation_new(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {}
    training_run = request.GET.get("training_run", "")
    if training_run.isdigit():  # "Generate with this adapter" on a training run's page
        initial["training_run"] = int(training_run)
    form = GenerationForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data["backgrounds_file"]
        if upload:
            folder = Path(settings.CONVGEN_DATA_DIR) / "uploads" / "backgrounds"
            input_path = store_upload(upload, folder, "backgrounds.txt")
            shown = Path(upload.name or "backgrounds").name  # never the path on the server
        else:
            input_path = Path(settings.CONVGEN_DATA_DIR) / data["backgrounds_path"]
            shown = data["backgrounds_path"]  # relative to the data directory, as listed
        try:
            n = len(read_backgrounds(input_path))
        except BackgroundFileError as exc:
            form.add_error(None, str(exc).replace(str(input_path), shown))
            n = -1
        except (ValueError, RecursionError):  # a 5,000-digit number, very deep nesting
            form.add_error(None, _("%(name)s is not a Backgrounds file.") % {"name": shown})
            n = -1
        if n == 0:
            form.add_error(None, _("The Backgrounds file is empty."))
        if n > 0:
            return _start_run(request, data, input_path, n)
        if upload:
            # A refused upload is not kept, so it is never offered in the list of files either.
            input_path.unlink(missing_ok=True)
    return render(request, "modeling/generation_new.html", {"form": form})


def _start_run(
    request: HttpRequest, data: dict[str, Any], input_path: Path, n: int
) -> HttpResponse:
    from modeling.tasks import generate_task

    training_run: TrainingRun | None = data["training_run"]
    params: GenerationParams = data["params"]
    runs = Path(settings.CONVGEN_RUNS_DIR) / "generation"
    run = start_job(
        GenerationRun,
        generate_task,
        path_field="output_path",
        path=lambda r: runs / str(r.pk) / "conversations.jsonl",
        name=data["name"],
        training_run=training_run,
        base_model=training_run.base_model if training_run else data["base_model"],
        adapter=adapter_of(training_run) if training_run else data["adapter"],
        input_path=str(input_path),
        params=params.to_dict() | {"device": data["device"]},
        n_total=n,
        n_shards=data["n_shards"],
        created_by=request.user if request.user.is_authenticated else None,
    )
    return redirect("modeling:generation_detail", pk=run.pk)


def render_run_page(
    request: HttpRequest, run: GenerationRun, extra: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    """The run's page; `extra` adds to the context (the export view's form with its errors)."""
    diversity = run.diversity or {}
    return render(
        request,
        "modeling/generation_detail.html",
        {
            "run": run,
            "diversity": diversity,
            "fields": [
                (_("Questions"), diversity.get("questions")),
                (_("Answers"), diversity.get("answers")),
            ],
            "samples": run.conversations.order_by("position", "sample_index")[:SAMPLE_SIZE],
            "params": sorted((run.params or {}).items()),
            **(extra or {}),
        },
        status=status,
    )


@researcher_required
def generation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render_run_page(request, get_object_or_404(GenerationRun, pk=pk))


def status_payload(run: GenerationRun) -> dict[str, Any]:
    return job_status(run) | {"n_done": run.n_done, "n_total": run.n_total}


@researcher_required
@require_GET
def generation_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(status_payload(get_object_or_404(GenerationRun, pk=pk)))


@researcher_required
@require_POST
def generation_resume(request: HttpRequest, pk: int) -> HttpResponse:
    """Continue a failed or cancelled run: finished records are kept, the rest generated."""
    from modeling.tasks import generate_task

    run = get_object_or_404(GenerationRun, pk=pk)
    requeue(run, generate_task, params=run.params | {"resume": True}, message="resumed")
    return redirect("modeling:generation_detail", pk=pk)


@researcher_required
@require_POST
def generation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    request_cancel(get_object_or_404(GenerationRun, pk=pk))
    return redirect("modeling:generation_detail", pk=pk)
