"""The researcher's overview of datasets, training runs and generation runs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from convgen_site.roles import researcher_required
from modeling.models import Dataset, GenerationRun, TrainingRun


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
