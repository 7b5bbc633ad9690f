"""The generation run page: rating studies, "create a study", and the rated-dataset download."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from modeling.models import GenerationRun
from tests.webui.conftest import RECORDS

pytestmark = pytest.mark.django_db


def _download(client: Client, run: GenerationRun, **params: str) -> list[dict[str, Any]]:
    response = client.get(reverse("modeling:generation_export", args=[run.pk]), params)
    assert response.status_code == 200, response.content.decode()[:2000]
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join(response.streaming_content).decode("utf-8")  # type: ignore[arg-type]
    return [json.loads(line) for line in body.splitlines()]


def test_the_run_page_offers_the_export_form_and_a_new_study(
    researcher_client: Client, generation_run: GenerationRun
) -> None:
    html = researcher_client.get(
        reverse("modeling:generation_detail", args=[generation_run.pk])
    ).content.decode()
    for element_id in (
        "export-form", "id_export_format", "id_export_target", "id_export_only_parse_ok",
        "id_export_min_correctness", "id_export_min_creativity", "export-submit", "create-study",
    ):  # fmt: skip
        assert f'id="{element_id}"' in html, element_id
    assert f'href="{reverse("annotation:study_create")}?run={generation_run.pk}"' in html
    assert "No study rates this run yet." in html


def test_create_a_study_preselects_the_run(
    researcher_client: Client, generation_run: GenerationRun
) -> None:
    url = reverse("annotation:study_create") + f"?run={generation_run.pk}"
    html = researcher_client.get(url).content.decode()
    assert f'value="{generation_run.pk}" id="id_runs_0" checked' in html
    html = researcher_client.get(reverse("annotation:study_create") + "?run=x").content.decode()
    assert "checked" not in html


def test_export_without_a_rating_filter(
    researcher_client: Client, generation_run: GenerationRun
) -> None:
    rows = _download(researcher_client, generation_run, format="oig", only_parse_ok="on")
    assert [r["metadata"]["id"] for r in rows] == ["r0", "r1", "r3"]  # r2 failed to parse
    assert rows[0]["text"] == (
        "Background: The river flows north through the valley."
        "<human>: Which way does the river flow?<bot>: North."
    )
    rows = _download(researcher_client, generation_run, format="messages")  # parse failures kept
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    assert rows[1]["messages"] == [
        {"role": "system", "content": "Background: ภาษาไทยเป็นภาษาราชการของประเทศไทย"},
        {"role": "user", "content": "ภาษาราชการของไทยคืออะไร"},
        {"role": "assistant", "content": "ภาษาไทย"},
    ]
    assert len(rows) == len(RECORDS)


def test_export_with_a_rating_filter_keeps_what_passes(
    researcher_client: Client, rated_run: GenerationRun
) -> None:
    base = {"format": "messages", "only_parse_ok": "on"}
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    # answer means: r0 2.5, r1 2.0; question means: r0 2.0, r1 3.0; r2 and r3 unrated.
    assert ids(_download(researcher_client, rated_run, **base, min_correctness="2.5")) == ["r0"]
    rows = _download(researcher_client, rated_run, **base, min_correctness="2.5", target="question")
    assert ids(rows) == ["r1"]
    rows = _download(researcher_client, rated_run, **base, min_correctness="2", target="both")
    assert ids(rows) == ["r0", "r1"]
    assert _download(researcher_client, rated_run, **base, min_correctness="2.6") == []
    # An empty minimum is no filter.
    assert ids(_download(researcher_client, rated_run, **base, min_correctness="")) == [
        "r0", "r1", "r3",
    ]  # fmt: skip
    response = researcher_client.get(
        reverse("modeling:generation_export", args=[rated_run.pk]),
        {**base, "min_correctness": "2.5"},
    )
    assert f"generation-run-{rated_run.pk}-messages-rated.jsonl" in response["Content-Disposition"]


def test_a_filter_without_ratings_or_a_bad_value_is_shown_on_the_page(
    researcher_client: Client, generation_run: GenerationRun, rated_run: GenerationRun
) -> None:
    url = reverse("modeling:generation_export", args=[rated_run.pk])
    response = researcher_client.get(url, {"format": "oig", "min_creativity": "2"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "No ratings of creativity for this run&#x27;s conversations yet." in html
    assert 'id="export-errors"' in html
    response = researcher_client.get(url, {"format": "oig", "min_correctness": "high"})
    assert response.status_code == 400
    assert "Enter a number." in response.content.decode()
    response = researcher_client.get(url, {"format": "csv"})
    assert response.status_code == 400


def test_the_run_page_follows_its_studies(
    researcher_client: Client, rated_run: GenerationRun
) -> None:
    html = researcher_client.get(
        reverse("modeling:generation_detail", args=[rated_run.pk])
    ).content.decode()
    assert f'href="{reverse("annotation:study_detail", args=["rated"])}"' in html
    assert f'href="{reverse("stats:study_report", args=["rated"])}"' in html
    assert "Rated study" in html
    assert "<td>2 / 2</td>" in html  # items rated by all raters
    assert "<td>4</td>" in html  # completed ratings (assignments)
