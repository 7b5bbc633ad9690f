"""Report pages: researchers only, HTML/JSON/CSV of a study, and the CSV upload form."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.stats.conftest import synthetic_rows


def _csv_bytes(rows: list[tuple[str, str, str, str, int]]) -> bytes:
    lines = ["rater,item,target,criterion,score"] + [",".join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.django_db
def test_raters_and_anonymous_users_cannot_see_reports(
    client: Client, rater_client: Client, make_study: Callable[..., object]
) -> None:
    make_study(synthetic_rows(n_items=4), slug="s")
    url = reverse("stats:study_report", args=["s"])
    assert client.get(url).status_code == 302  # to the login page
    assert rater_client.get(url).status_code == 403
    assert rater_client.get(reverse("stats:report_from_csv")).status_code == 403


@pytest.mark.django_db
def test_the_study_report_page_shows_conclusions_plots_and_downloads(
    researcher_client: Client, make_study: Callable[..., object]
) -> None:
    make_study(synthetic_rows(n_items=12), slug="s")
    response = researcher_client.get(reverse("stats:study_report", args=["s"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Questions were rated more correct than answers" in html
    assert html.count("<svg") == 3
    assert reverse("stats:study_report_json", args=["s"]) in html
    assert 'name="alternative"' in html  # the options form
    greater = researcher_client.get(
        reverse("stats:study_report", args=["s"]), {"alternative": "greater"}
    )
    assert "alternative greater" in greater.content.decode()


@pytest.mark.django_db
def test_json_and_csv_endpoints_follow_the_options(
    researcher_client: Client, make_study: Callable[..., object]
) -> None:
    make_study(synthetic_rows(n_items=12), slug="s")
    data = researcher_client.get(
        reverse("stats:study_report_json", args=["s"]), {"alternative": "greater"}
    ).json()
    assert data["n_items"] == 12
    assert data["comparisons"][0]["alternative"] == "greater"
    response = researcher_client.get(reverse("stats:study_report_csv", args=["s"]))
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="s-report.csv"' in response["Content-Disposition"]
    bad = researcher_client.get(
        reverse("stats:study_report_json", args=["s"]), {"alternative": "x"}
    )
    assert bad.status_code == 400


@pytest.mark.django_db
def test_unknown_studies_are_404_and_empty_studies_explain_why(
    researcher_client: Client, make_study: Callable[..., object]
) -> None:
    assert researcher_client.get(reverse("stats:study_report", args=["nope"])).status_code == 404
    make_study([], slug="empty")
    response = researcher_client.get(reverse("stats:study_report", args=["empty"]))
    assert response.status_code == 409
    assert "no ratings" in response.content.decode()
    assert researcher_client.get(reverse("stats:study_report_json", args=["empty"])).json()[
        "problems"
    ] == ["no ratings"]


@pytest.mark.django_db
def test_an_uploaded_csv_is_analysed_and_names_are_escaped(researcher_client: Client) -> None:
    rows = [(r, "<b>x</b>" if i == "item0" else i, t, c, s) for r, i, t, c, s in synthetic_rows()]
    upload = SimpleUploadedFile("ratings.csv", _csv_bytes(rows), content_type="text/csv")
    response = researcher_client.post(
        reverse("stats:report_from_csv"), {"ratings": upload, "scale": "1-5"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Report: ratings.csv" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.django_db
def test_a_bad_upload_shows_the_problems_with_line_numbers(researcher_client: Client) -> None:
    body = b"rater,item,target,criterion,score\nr,1,question,c,7\n"
    upload = SimpleUploadedFile("bad.csv", body, content_type="text/csv")
    response = researcher_client.post(
        reverse("stats:report_from_csv"), {"ratings": upload, "scale": "1-5"}
    )
    assert response.status_code == 400
    assert "bad.csv: line 2: score 7 is outside the scale 1-5" in response.content.decode()
    latin = SimpleUploadedFile("l.csv", "r\xe9".encode("latin-1"), content_type="text/csv")
    response = researcher_client.post(reverse("stats:report_from_csv"), {"ratings": latin})
    assert "l.csv is not UTF-8 text." in response.content.decode()


@pytest.mark.django_db
def test_the_upload_form_renders(researcher_client: Client) -> None:
    response = researcher_client.get(reverse("stats:report_from_csv"))
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.content.decode()
