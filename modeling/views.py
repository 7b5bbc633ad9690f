"""Researcher pages for datasets, training runs and generation runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from django import forms
from django.apps import apps
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from convgen_site.roles import researcher_required
from convgen_site.uploads import store_upload
from modeling import export
from modeling.forms import DEFAULT_CRITERIA, ExportForm
from modeling.generation import BackgroundFileError, GenerationParams, read_backgrounds
from modeling.jobs import enqueue, job_status, request_cancel, requeue
from modeling.models import Dataset, GenerationRun, RunStatus, TrainingRun

BACKGROUND_SUFFIXES = (".jsonl", ".csv", ".tsv", ".txt")
SAMPLE_SIZE = 20


@researcher_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "modeling/dashboard.html",
        {
            "datasets": Dataset.objects.all()[:50],
            "training_runs": TrainingRun.objects.all()[:50],
            "generation_runs": GenerationRun.objects.all()[:50],
        },
    )


# --- generation -------------------------------------------------------------------------------


def background_files() -> list[tuple[str, str]]:
    """Backgrounds files a researcher may pick: under CONVGEN_DATA_DIR, relative paths."""
    root = Path(settings.CONVGEN_DATA_DIR)
    if not root.is_dir():
        return []
    found = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix.lower() in BACKGROUND_SUFFIXES and p.is_file()
    )
    return [(f, f) for f in found[:500]]


def adapter_of(run: TrainingRun) -> str:
    """The adapter directory a training run wrote (its output dir, or an `adapter/` inside)."""
    out = Path(run.output_dir)
    for candidate in (out, out / "adapter", out / "final"):
        if (candidate / "adapter_config.json").exists():
            return str(candidate)
    return str(out)


def _param_field(f: dataclasses.Field[Any]) -> forms.Field:
    help_text = str(f.metadata.get("help", ""))
    if f.type == "int":
        return forms.IntegerField(initial=f.default, min_value=0, help_text=help_text)
    return forms.FloatField(initial=f.default, min_value=0.0, help_text=help_text)


class GenerationForm(forms.Form):
    """Start a generation run: model, Backgrounds and every generation parameter."""

    name = forms.CharField(max_length=200, required=False)
    training_run = forms.ModelChoiceField(
        queryset=TrainingRun.objects.filter(status=RunStatus.SUCCEEDED),
        required=False,
        help_text=_("Use this run's base model and adapter."),
    )
    base_model = forms.CharField(
        max_length=500, required=False, help_text=_("Path or hub id (without a training run).")
    )
    adapter = forms.CharField(max_length=1000, required=False, help_text=_("LoRA adapter dir."))
    backgrounds_file = forms.FileField(
        required=False, help_text=_("Upload .jsonl (background, item/id), .csv or .txt.")
    )
    backgrounds_path = forms.ChoiceField(
        required=False, help_text=_("…or pick a file from the data directory.")
    )
    ban_phrases_text = forms.CharField(
        label=_("Ban phrases"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line, e.g. Examples include:"),
    )
    n_shards = forms.IntegerField(initial=1, min_value=1, max_value=64)
    device = forms.ChoiceField(
        choices=[("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda")], initial="auto"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice = self.fields["backgrounds_path"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [("", "—"), *background_files()]
        for f in dataclasses.fields(GenerationParams):
            if f.name != "ban_phrases":
                self.fields[f.name] = _param_field(f)

    MODEL_FIELDS = ("name", "training_run", "base_model", "adapter")
    INPUT_FIELDS = ("backgrounds_file", "backgrounds_path")

    @property
    def model_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.MODEL_FIELDS]

    @property
    def input_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.INPUT_FIELDS]

    @property
    def param_fields(self) -> list[forms.BoundField]:
        skip = self.MODEL_FIELDS + self.INPUT_FIELDS
        return [self[name] for name in self.fields if name not in skip]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("training_run") and not data.get("base_model"):
            raise forms.ValidationError(_("Choose a training run or enter a base model."))
        has_file, has_path = bool(data.get("backgrounds_file")), bool(data.get("backgrounds_path"))
        if has_file == has_path:
            raise forms.ValidationError(_("Upload a Backgrounds file or pick one (not both)."))
        upload = data.get("backgrounds_file")
        if upload is not None and upload.size > settings.CONVGEN_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The Backgrounds file is larger than the upload limit."))
        names = {f.name for f in dataclasses.fields(GenerationParams)} - {"ban_phrases"}
        phrases = [p.strip() for p in data.get("ban_phrases_text", "").splitlines() if p.strip()]
        try:
            data["params"] = GenerationParams(
                **{k: data[k] for k in names if k in data}, ban_phrases=tuple(phrases)
            )
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@researcher_required
def generation_new(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {}
    training_run = request.GET.get("training_run", "")
    if training_run.isdigit():  # "Generate with this adapter" on a training run's page
        initial["training_run"] = int(training_run)
    form = GenerationForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data["backgrounds_file"]:
            folder = Path(settings.CONVGEN_DATA_DIR) / "uploads" / "backgrounds"
            input_path = store_upload(data["backgrounds_file"], folder, "backgrounds.txt")
        else:
            input_path = Path(settings.CONVGEN_DATA_DIR) / data["backgrounds_path"]
        try:
            n = len(read_backgrounds(input_path))
        except BackgroundFileError as exc:
            form.add_error(None, str(exc))
            n = -1
        if n == 0:
            form.add_error(None, _("The Backgrounds file is empty."))
        if n > 0:
            return _start_run(request, data, input_path, n)
    return render(request, "modeling/generation_new.html", {"form": form})


def _start_run(
    request: HttpRequest, data: dict[str, Any], input_path: Path, n: int
) -> HttpResponse:
    from modeling.tasks import generate_task

    training_run: TrainingRun | None = data["training_run"]
    params: GenerationParams = data["params"]
    run = GenerationRun.objects.create(
        name=data["name"],
        training_run=training_run,
        base_model=training_run.base_model if training_run else data["base_model"],
        adapter=adapter_of(training_run) if training_run else data["adapter"],
        input_path=str(input_path),
        output_path="",
        params=params.to_dict() | {"device": data["device"]},
        n_total=n,
        n_shards=data["n_shards"],
        created_by=request.user if request.user.is_authenticated else None,
    )
    out = Path(settings.CONVGEN_RUNS_DIR) / "generation" / str(run.pk) / "conversations.jsonl"
    GenerationRun.objects.filter(pk=run.pk).update(output_path=str(out))
    enqueue(run, generate_task, run.pk)
    return redirect("modeling:generation_detail", pk=run.pk)


def studies_of(run: GenerationRun) -> list[dict[str, Any]]:
    """Rating studies whose items come from this run, with progress and report links."""
    if not apps.is_installed("annotation"):
        return []
    from annotation.models import Study
    from annotation.services import overview

    out = []
    for study in Study.objects.filter(items__conversation__run=run).distinct().order_by("pk"):
        progress = overview(study)
        try:
            report_url: str | None = reverse("stats:study_report", kwargs={"slug": study.slug})
        except NoReverseMatch:
            report_url = None
        out.append(
            {
                "study": study,
                "overview": progress,
                "n_items": progress.items - progress.attention_checks,
                "detail_url": reverse("annotation:study_detail", kwargs={"slug": study.slug}),
                "report_url": report_url,
            }
        )
    return out


def criteria_of(studies: list[dict[str, Any]]) -> list[str]:
    """Criterion names rated in these studies (the default pair when there is none)."""
    names: list[str] = []
    for entry in studies:
        for c in entry["study"].criteria or []:
            name = str(c.get("criterion", "")) if isinstance(c, dict) else ""
            if name and name not in names:
                names.append(name)
    return names or list(DEFAULT_CRITERIA)


def _detail(
    request: HttpRequest,
    run: GenerationRun,
    studies: list[dict[str, Any]],
    export_form: ExportForm,
    status: int = 200,
) -> HttpResponse:
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
            "studies": studies,
            "export_form": export_form,
            "can_create_study": apps.is_installed("annotation"),
        },
        status=status,
    )


@researcher_required
def generation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(GenerationRun, pk=pk)
    studies = studies_of(run)
    return _detail(request, run, studies, ExportForm(criteria=criteria_of(studies)))


@researcher_required
@require_GET
def generation_export(request: HttpRequest, pk: int) -> HttpResponse | StreamingHttpResponse:
    """Stream the run's conversations as jsonl, optionally only those rated well enough."""
    run = get_object_or_404(GenerationRun, pk=pk)
    studies = studies_of(run)
    form = ExportForm(request.GET, criteria=criteria_of(studies))
    means: dict[tuple[str, str, str], float] = {}
    thresholds = form.thresholds() if form.is_valid() else {}
    if thresholds:
        try:
            means = export.rating_means(None, run, thresholds)
        except export.ExportError as exc:
            form.add_error(None, str(exc))
        else:
            if not means:
                form.add_error(
                    None,
                    _("No ratings of %(criteria)s for this run's conversations yet.")
                    % {"criteria": ", ".join(sorted(thresholds))},
                )
    if not form.is_valid():
        return _detail(request, run, studies, form, status=400)
    data = form.cleaned_data
    records = export.select_records(
        export.run_records(run),
        only_parse_ok=data["only_parse_ok"],
        thresholds=thresholds,
        target=data["target"],
        means=means,
    )
    response = StreamingHttpResponse(
        export.export_lines(records, data["format"]),
        content_type="application/jsonl; charset=utf-8",
    )
    suffix = "-rated" if thresholds else ""
    response["Content-Disposition"] = (
        f'attachment; filename="generation-run-{run.pk}-{data["format"]}{suffix}.jsonl"'
    )
    return response


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
