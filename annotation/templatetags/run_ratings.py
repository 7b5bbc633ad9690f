"""`{% run_ratings run %}`: a generation run's rating studies and its rated export, on its page.

The annotation app provides this part of modeling's run page, so modeling need not know of it.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from annotation.forms import ExportForm
from annotation.monitoring import overview
from annotation.rated_export import criteria_of, studies_of
from annotation.views import stats_report_url
from modeling.models import GenerationRun

register = template.Library()


@register.inclusion_tag("annotation/_run_ratings.html", takes_context=True)
def run_ratings(context: template.Context, run: GenerationRun) -> dict[str, Any]:
    """Studies with progress and links, and the export form (the view's own after an error)."""
    studies = studies_of(run)
    entries = []
    for study in studies:
        progress = overview(study)
        entries.append(
            {
                "study": study,
                "overview": progress,
                "n_items": progress.items - progress.attention_checks,
                "detail_url": reverse("annotation:study_detail", kwargs={"slug": study.slug}),
                "report_url": stats_report_url(study),
            }
        )
    form = context.get("export_form") or ExportForm(criteria=criteria_of(studies))
    return {"run": run, "studies": entries, "export_form": form}
