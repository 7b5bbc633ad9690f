"""Permissions on every new page, the dashboard's lists and buttons."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from modeling.models import Dataset, GenerationRun, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(db: None) -> dict[str, int]:
    dataset = Dataset.objects.create(name="d<1>", source_path="s", output_dir="o")
    run = TrainingRun.objects.create(name="t<1>", base_model="m", output_dir="o", dataset=dataset)
    gen = GenerationRun.objects.create(base_model="m", input_path="i", output_path="o")
    return {"dataset": dataset.pk, "training": run.pk, "generation": gen.pk}


def _urls(rows: dict[str, int]) -> list[tuple[str, str]]:
    d, t, g = rows["dataset"], rows["training"], rows["generation"]
    return [
        ("get", reverse("modeling:dataset_new")),
        ("post", reverse("modeling:dataset_new")),
        ("get", reverse("modeling:dataset_detail", args=[d])),
        ("get", reverse("modeling:dataset_status", args=[d])),
        ("post", reverse("modeling:dataset_cancel", args=[d])),
        ("get", reverse("modeling:training_new")),
        ("post", reverse("modeling:training_new")),
        ("get", reverse("modeling:training_detail", args=[t])),
        ("get", reverse("modeling:training_status", args=[t])),
        ("post", reverse("modeling:training_cancel", args=[t])),
        ("post", reverse("modeling:training_resume", args=[t])),
        ("get", reverse("modeling:generation_export", args=[g])),
        ("get", reverse("modeling:dashboard")),
    ]


def test_raters_are_refused_and_visitors_sent_to_log_in(
    rater_client: Client, client: Client, rows: dict[str, int]
) -> None:
    for method, url in _urls(rows):
        assert getattr(rater_client, method)(url).status_code == 403, url
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
    # Nothing was cancelled or started by the refused requests.
    assert Dataset.objects.get().status == RunStatus.QUEUED
    assert TrainingRun.objects.get().status == RunStatus.QUEUED
    assert TrainingRun.objects.count() == 1 and Dataset.objects.count() == 1


def test_posts_need_a_csrf_token(researcher: object, rows: dict[str, int]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)  # type: ignore[arg-type]
    response = client.post(reverse("modeling:training_cancel", args=[rows["training"]]))
    assert response.status_code == 403
    assert TrainingRun.objects.get().status == RunStatus.QUEUED


def test_the_dashboard_lists_datasets_and_training_runs(
    researcher_client: Client, rows: dict[str, int]
) -> None:
    html = researcher_client.get(reverse("modeling:dashboard")).content.decode()
    assert f'id="upload-oig" href="{reverse("modeling:dataset_new")}"' in html
    assert f'id="new-training-run" href="{reverse("modeling:training_new")}"' in html
    assert f'href="{reverse("modeling:dataset_detail", args=[rows["dataset"]])}">d&lt;1&gt;' in html
    assert (
        f'href="{reverse("modeling:training_detail", args=[rows["training"]])}">t&lt;1&gt;' in html
    )
    assert "<1>" not in html
