"""Server-rendered pages: the rater's rating page and the researcher's study pages (thin)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation import allocation, monitoring, rated_export
from annotation.forms import ExportForm, RatingForm, StudyCreateForm
from annotation.models import Assignment, AssignmentStatus, Study
from annotation.rating_files import iter_export_lines
from annotation.studies import create_study, studies_for
from convgen_site.roles import is_researcher, rater_required, researcher_required
from modeling import export
from modeling.models import GenerationRun
from modeling.views.generation import render_run_page


def _user(request: HttpRequest) -> User:
    """The signed-in user (the role decorators have already turned anonymous users away)."""
    return cast(User, request.user)


def stats_report_url(study: Study) -> str | None:
    """Link to the stats app's report, when that app provides it."""
    try:
        return reverse("stats:study_report", kwargs={"slug": study.slug})
    except NoReverseMatch:
        return None


def scale_label(target: str, criterion: str) -> str:
    """'Correctness of the question', translated; study-defined names pass through gettext too."""
    return _("%(criterion)s of the %(target)s") % {
        "criterion": _(criterion).capitalize() if criterion.isascii() else _(criterion),
        "target": _(target),
    }


@rater_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = list(studies_for(_user(request)))
    if is_researcher(_user(request)):
        overviews = [(study, monitoring.overview(study)) for study in studies]
        return render(request, "annotation/study_list_researcher.html", {"overviews": overviews})
    rows = [(study, allocation.progress(study, _user(request))) for study in studies]
    return render(request, "annotation/study_list.html", {"rows": rows})


@researcher_required
def study_create(request: HttpRequest) -> HttpResponse:
    initial = StudyCreateForm.initial_from(request.GET)  # ?run=<id> from a generation run page
    form = StudyCreateForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            study = create_study(form.spec(), form.cleaned_data["rows"], _user(request))
        except (ValidationError, IntegrityError) as exc:
            form.add_error(None, str(exc))
        else:
            count = len(form.cleaned_data["rows"])
            messages.success(request, _("Study created with %(n)d items.") % {"n": count})
            return redirect("annotation:study_detail", slug=study.slug)
    return render(request, "annotation/study_create.html", {"form": form})


@researcher_required
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    items = Paginator(monitoring.item_progress(study), 100).get_page(request.GET.get("page"))
    context = {
        "study": study,
        "overview": monitoring.overview(study),
        "raters": monitoring.rater_progress(study),
        "failures": monitoring.attention_check_failures(study),
        "speeders": monitoring.speeders(study)[:200],
        "problems": monitoring.flagged_assignments(study)[:200],
        "items": items,
        "stats_url": stats_report_url(study),
    }
    return render(request, "annotation/study_detail.html", context)


@researcher_required
@require_POST
def study_toggle(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    study.is_open = not study.is_open
    study.save(update_fields=["is_open"])
    return redirect("annotation:study_detail", slug=slug)


@researcher_required
def study_export(request: HttpRequest, slug: str, fmt: str) -> StreamingHttpResponse:
    if fmt not in ("csv", "jsonl"):
        raise Http404("unknown export format")
    study = get_object_or_404(Study, slug=slug)
    include = request.GET.get("attention_checks") == "1"
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    # Streamed: a large study's export never sits in memory as one string.
    response = StreamingHttpResponse(
        iter_export_lines(study, fmt, include_attention_checks=include),
        content_type=f"{content_type}; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-ratings.{fmt}"'
    return response


def _rater_study(request: HttpRequest, slug: str) -> Study:
    study = get_object_or_404(Study, slug=slug)
    if not (allocation.may_rate(study, _user(request)) or is_researcher(_user(request))):
        raise PermissionDenied("not a rater of this study")
    return study


@rater_required
def rate_next(request: HttpRequest, slug: str) -> HttpResponse:
    study = _rater_study(request, slug)
    try:
        assignment = allocation.next_assignment(study, _user(request))
    except allocation.StudyClosed:
        assignment = None
    if assignment is None:
        last = (
            Assignment.objects.filter(item__study=study, rater=_user(request))
            .exclude(status=AssignmentStatus.EXPIRED)
            .order_by("-id")
            .first()
        )
        context = {
            "study": study,
            "progress": allocation.progress(study, _user(request)),
            "last": last,
        }
        return render(request, "annotation/done.html", context)
    return redirect("annotation:rate", slug=slug, assignment_id=assignment.pk)


def _scale_groups(
    study: Study, assignment: Assignment, posted: dict[str, str] | None
) -> list[dict[str, Any]]:
    current = {(r.target, r.criterion): r.score for r in assignment.ratings.all()}
    groups = []
    for index, (target, criterion) in enumerate(study.criteria_keys):
        name = f"{target}__{criterion}"
        value: Any = current.get((target, criterion))
        if posted is not None:
            value = posted.get(name) or None
        groups.append(
            {
                "index": index,
                "name": name,
                "target": target,
                "label": scale_label(target, criterion),
                "value": str(value) if value is not None else "",
                "points": [(str(v), _(label) if label else "") for v, label in study.scale_points],
            }
        )
    return groups


def _neighbours(assignment: Assignment) -> tuple[int | None, int | None]:
    """Ids of the rater's previous and following items in the order they were given."""
    mine = Assignment.objects.filter(
        item__study_id=assignment.item.study_id, rater_id=assignment.rater_id
    ).exclude(status=AssignmentStatus.EXPIRED)
    before = mine.filter(pk__lt=assignment.pk).order_by("-pk").values_list("pk", flat=True).first()
    after = mine.filter(pk__gt=assignment.pk).order_by("pk").values_list("pk", flat=True).first()
    return before, after


def _render_rate(
    request: HttpRequest,
    study: Study,
    assignment: Assignment,
    posted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    item = assignment.item
    previous_id, next_id = _neighbours(assignment)
    groups = _scale_groups(study, assignment, posted)
    context = {
        "study": study,
        "assignment_id": assignment.pk,
        "status": assignment.status,
        "is_completed": assignment.status == AssignmentStatus.COMPLETED,
        # Only what raters may see: never the source, the external id or the conversation.
        "shown": {"background": item.background, "question": item.question, "answer": item.answer},
        "question_groups": [g for g in groups if g["target"] == "question"],
        "answer_groups": [g for g in groups if g["target"] == "answer"],
        "progress": allocation.progress(study, _user(request), assignment),
        "previous_id": previous_id,
        "next_id": next_id,
        "submission_key": uuid.uuid4().hex,
        "errors": errors or {},
        "scale_keys": f"{study.scale_min}–{study.scale_max}",
    }
    return render(request, "annotation/rate.html", context, status=status)


@rater_required
@require_http_methods(["GET", "POST"])
def rate(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    study = _rater_study(request, slug)
    assignment = get_object_or_404(
        Assignment.objects.select_related("item"), pk=assignment_id, item__study=study
    )
    if assignment.rater_id != request.user.pk:
        raise Http404("no such assignment")  # as for one that does not exist: ids say nothing
    if assignment.status == AssignmentStatus.EXPIRED:
        messages.info(request, _("That item was given to someone else. Here is your next one."))
        return redirect("annotation:rate_next", slug=slug)
    if request.method == "GET":
        return _render_rate(request, study, assignment)

    form = RatingForm(study, request.POST)
    form.is_valid()  # every field is optional; the scores are checked by allocation below
    data = form.cleaned_data
    action = data.get("action", "submit")
    refused = {
        name: " ".join(str(e) for e in errors)
        for name, errors in form.errors.items()
        if name in ("submission_key", f"{action}_reason")  # NUL characters, over-long values
    }
    if refused:
        return _render_rate(request, study, assignment, errors=refused, status=400)
    try:
        if action in ("skip", "flag"):
            reason = data[f"{action}_reason"]
            if action == "skip" and not reason:
                return _render_rate(
                    request,
                    study,
                    assignment,
                    errors={"skip_reason": _("Please say why you skip this item.")},
                    status=400,
                )
            status = AssignmentStatus.SKIPPED if action == "skip" else AssignmentStatus.FLAGGED
            allocation.give_up(assignment, status, reason or _("broken item"))
            return redirect("annotation:rate_next", slug=slug)
        posted = form.posted()
        try:
            scores = allocation.validate_ratings(study, form.entries())
        except ValueError as exc:
            errors = {
                f"{t}/{c}": _("Please rate: %(scale)s") % {"scale": scale_label(t, c)}
                for t, c in study.criteria_keys
                if f"{t}/{c}" in exc.args[0]
            } or exc.args[0]
            return _render_rate(
                request, study, assignment, posted=posted, errors=errors, status=400
            )
        allocation.submit(
            assignment,
            scores,
            time_spent_ms=data.get("time_spent_ms"),
            submission_key=data["submission_key"],
        )
    except allocation.LeaseLost:
        messages.info(request, _("That item already has all its ratings. Here is your next one."))
    except allocation.StudyClosed:
        pass  # nothing stored; the next page says that the study is closed
    return redirect("annotation:rate_next", slug=slug)


# --- a generation run's export, filtered by its ratings -----------------------------------------


@researcher_required
@require_GET
def generation_export(request: HttpRequest, pk: int) -> HttpResponse | StreamingHttpResponse:
    """Stream the run's conversations as jsonl, optionally only those rated well enough.

    Routed as `modeling:generation_export` (see convgen_site.urls): the download on the run page.
    """
    run = get_object_or_404(GenerationRun, pk=pk)
    form = ExportForm(request.GET, criteria=rated_export.criteria_of(rated_export.studies_of(run)))
    means: dict[tuple[str, str, str], float] = {}
    thresholds = form.thresholds() if form.is_valid() else {}
    if thresholds:
        means = rated_export.rating_means(None, run, thresholds)
        if not means:
            form.add_error(
                None,
                _("No ratings of %(criteria)s for this run's conversations yet.")
                % {"criteria": ", ".join(sorted(thresholds))},
            )
    if not form.is_valid():
        return render_run_page(request, run, {"export_form": form}, status=400)
    data = form.cleaned_data
    records = export.select_records(
        export.run_records(run),
        only_parse_ok=data["only_parse_ok"],
        keep=rated_export.rating_filter(thresholds, data["target"], means),
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
