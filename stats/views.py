"""Report pages: a study's report as HTML, JSON and CSV, and a report for an uploaded CSV."""

from __future__ import annotations

import io

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from convgen_site.roles import researcher_required
from stats.forms import PlanForm, RatingsUploadForm, ReportOptionsForm
from stats.html import report_context
from stats.ratings import RatingsError, read_ratings_csv
from stats.report import Report, build_report, to_csv, to_json_dict
from stats.sources import StudyNotFound, StudyRatings, study_ratings
from stats.study_plan import plan_text


class _BadOptions(ValueError):
    """Invalid query-string options."""


def _study_report(request: HttpRequest, slug: str) -> tuple[StudyRatings, Report]:
    """Load a study's ratings and build its report; 404 for an unknown study."""
    options = ReportOptionsForm(request.GET)
    if not options.is_valid():
        raise _BadOptions(options.errors.as_text())
    try:
        data = study_ratings(slug)
    except StudyNotFound:
        raise Http404(_("No such study.")) from None
    report = build_report(
        data.table, options.report_settings(), source=f"study {slug}", labels=data.labels
    )
    return data, report


@researcher_required
def study_report(request: HttpRequest, slug: str) -> HttpResponse:
    """The report page of a study."""
    try:
        data, report = _study_report(request, slug)
    except _BadOptions as exc:
        return HttpResponseBadRequest(str(exc))
    except RatingsError as exc:
        problem = {"title": _("Report: %(slug)s") % {"slug": slug}, "problems": exc.problems}
        return render(request, "stats/report_problem.html", problem, status=409)
    query = request.GET.urlencode()
    suffix = f"?{query}" if query else ""
    context = report_context(report, data.scale_labels)
    context["title"] = _("Report: %(title)s") % {"title": data.title or slug}
    downloads: list[tuple[str, str]] = [
        ("JSON", reverse("stats:study_report_json", args=[slug]) + suffix),
        ("CSV", reverse("stats:study_report_csv", args=[slug]) + suffix),
    ]
    context["downloads"] = downloads
    context["options_form"] = ReportOptionsForm(
        initial={
            "alternative": report.settings.alternative,
            "zero_method": report.settings.zero_method,
        }
    )
    context.update(_plan_context(request, data))
    return render(request, "stats/report.html", context)


def _plan_context(request: HttpRequest, data: StudyRatings) -> dict[str, object]:
    """The planner section: its form, and the plan once the form was sent (``?delta=``)."""
    if "delta" not in request.GET:
        return {"plan_form": PlanForm(data.table.criteria)}
    form = PlanForm(data.table.criteria, request.GET)
    if not form.is_valid():
        return {"plan_form": form}
    try:
        return {"plan_form": form, "plan": plan_text(form.plan(data.table))}
    except ValueError as exc:
        return {"plan_form": form, "plan_problem": str(exc)}


@researcher_required
def study_report_json(request: HttpRequest, slug: str) -> HttpResponse:
    """The report of a study as JSON (the documented contract)."""
    try:
        _data, report = _study_report(request, slug)
    except _BadOptions as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except RatingsError as exc:
        return JsonResponse({"error": str(exc), "problems": exc.problems}, status=409)
    return JsonResponse(to_json_dict(report), json_dumps_params={"ensure_ascii": False})


@researcher_required
def study_report_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """The report of a study as a tidy CSV download."""
    try:
        _data, report = _study_report(request, slug)
    except _BadOptions as exc:
        return HttpResponseBadRequest(str(exc))
    except RatingsError as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    response = HttpResponse(to_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slug}-report.csv"'
    return response


@researcher_required
def report_from_csv(request: HttpRequest) -> HttpResponse:
    """Upload a long-format ratings CSV and see its report; nothing is stored."""
    if request.method != "POST":
        return render(request, "stats/report_upload.html", {"form": RatingsUploadForm()})
    form = RatingsUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "stats/report_upload.html", {"form": form}, status=400)
    upload = form.cleaned_data["ratings"]
    name = upload.name or "upload.csv"
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        problems = [_("%(name)s is not UTF-8 text.") % {"name": name}]
        return render(
            request, "stats/report_upload.html", {"form": form, "problems": problems}, status=400
        )
    try:
        table = read_ratings_csv(io.StringIO(text), form.cleaned_data["scale"], name=name)
    except RatingsError as exc:
        problems = [f"{name}: {p}" for p in exc.problems]
        return render(
            request, "stats/report_upload.html", {"form": form, "problems": problems}, status=400
        )
    report = build_report(table, form.report_settings(), source=name)
    context = report_context(report)
    context["title"] = _("Report: %(name)s") % {"name": name}
    return render(request, "stats/report.html", context)
