"""Rater and researcher pages: escaping, blinding, progress, keyboard-free form posts, access."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study
from annotation.rating_files import export_to_string
from tests.annotation.conftest import SECRET_SOURCES

pytestmark = pytest.mark.django_db

FORM_SCORES = {
    "question__correctness": "3",
    "question__creativity": "2",
    "answer__correctness": "1",
    "answer__creativity": "2",
}


def _open_next(client: Client) -> tuple[int, str]:
    response = client.get("/annotation/river/rate/")
    assert response.status_code == 302
    match = re.search(r"/rate/(\d+)/$", response["Location"])
    assert match, response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 200
    return int(match.group(1)), page.content.decode()


def test_the_rating_page_shows_the_three_texts_escaped(rater_client: Client, study: Study) -> None:
    _, html = _open_next(rater_client)
    assert "&lt;script&gt;alert(" in html
    assert "<script>alert(" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "the river &lt;b&gt;flows&lt;/b&gt; north" in html
    assert "Item 1 of 3" in html
    assert html.count('type="radio"') == 12  # four scales of three labelled points
    assert "needs improvement" in html


def test_no_rater_page_names_a_source_or_model(rater_client: Client, study: Study) -> None:
    pages = [rater_client.get("/annotation/").content.decode()]
    for _ in range(3):
        assignment_id, html = _open_next(rater_client)
        pages.append(html)
        rater_client.post(f"/annotation/river/rate/{assignment_id}/", FORM_SCORES)
    pages.append(rater_client.get("/annotation/river/rate/").content.decode())
    pages.append(rater_client.get(f"/annotation/river/rate/{assignment_id}/").content.decode())
    blob = "\n".join(pages)
    for secret in (*SECRET_SOURCES, "secret"):
        assert secret not in blob


def test_a_plain_form_post_stores_the_ratings_and_moves_on(
    rater_client: Client, study: Study
) -> None:
    assignment_id, _ = _open_next(rater_client)
    response = rater_client.post(
        f"/annotation/river/rate/{assignment_id}/",
        {**FORM_SCORES, "submission_key": "k1", "time_spent_ms": "4200"},
    )
    assert response.status_code == 302 and response["Location"] == "/annotation/river/rate/"
    assignment = Assignment.objects.get(pk=assignment_id)
    assert assignment.status == AssignmentStatus.COMPLETED
    assert assignment.time_spent_ms == 4200
    assert Rating.objects.filter(assignment=assignment).count() == 4
    next_id, html = _open_next(rater_client)
    assert next_id != assignment_id
    assert "Item 2 of 3" in html
    assert f"/annotation/river/rate/{assignment_id}/" in html  # the way back


def test_a_double_post_with_the_same_key_counts_once(rater_client: Client, study: Study) -> None:
    assignment_id, _ = _open_next(rater_client)
    for _ in range(2):
        rater_client.post(
            f"/annotation/river/rate/{assignment_id}/", {**FORM_SCORES, "submission_key": "same"}
        )
    assert Item.objects.get(assignments__id=assignment_id).completed_count == 1
    assert Rating.objects.count() == 4


def test_going_back_shows_the_given_scores_and_saves_changes(
    rater_client: Client, study: Study
) -> None:
    assignment_id, _ = _open_next(rater_client)
    rater_client.post(f"/annotation/river/rate/{assignment_id}/", FORM_SCORES)
    html = rater_client.get(f"/annotation/river/rate/{assignment_id}/").content.decode()
    assert re.search(r'name="question__correctness" value="3" required checked', html)
    assert "Save changes" in html
    rater_client.post(
        f"/annotation/river/rate/{assignment_id}/", {**FORM_SCORES, "answer__correctness": "3"}
    )
    changed = Rating.objects.get(
        assignment_id=assignment_id, target="answer", criterion="correctness"
    )
    assert changed.score == 3
    assert Item.objects.get(assignments__id=assignment_id).completed_count == 1


def test_a_missing_scale_re_renders_the_form_with_a_message(
    rater_client: Client, study: Study
) -> None:
    assignment_id, _ = _open_next(rater_client)
    partial = {k: v for k, v in FORM_SCORES.items() if k != "answer__creativity"}
    response = rater_client.post(f"/annotation/river/rate/{assignment_id}/", partial)
    assert response.status_code == 400
    assert "Please rate: Creativity of the answer" in response.content.decode()
    assert not Rating.objects.exists()


def test_skip_needs_a_reason_and_flag_records_the_problem(
    rater_client: Client, study: Study
) -> None:
    first, _ = _open_next(rater_client)
    no_reason = rater_client.post(f"/annotation/river/rate/{first}/", {"action": "skip"})
    assert no_reason.status_code == 400
    rater_client.post(
        f"/annotation/river/rate/{first}/", {"action": "skip", "skip_reason": "off topic"}
    )
    second, _ = _open_next(rater_client)
    rater_client.post(
        f"/annotation/river/rate/{second}/", {"action": "flag", "flag_reason": "answer cut off"}
    )
    statuses = dict(Assignment.objects.values_list("pk", "status"))
    assert statuses == {first: "skipped", second: "flagged"}
    assert Assignment.objects.get(pk=second).flag_reason == "answer cut off"


def test_a_rater_cannot_open_another_raters_item(
    rater_client: Client, other_rater, study: Study
) -> None:
    assignment_id, _ = _open_next(rater_client)
    intruder = Client()
    intruder.force_login(other_rater)
    assert intruder.get(f"/annotation/river/rate/{assignment_id}/").status_code == 404
    response = intruder.post(f"/annotation/river/rate/{assignment_id}/", FORM_SCORES)
    assert response.status_code == 404  # as for an id that does not exist
    assert not Rating.objects.exists()


REPORT_URLS = [
    "/annotation/river/",
    "/annotation/river/export.csv",
    "/annotation/river/export.jsonl",
    "/annotation/new/",
    "/admin/annotation/study/",
]


def _stats_report_urls() -> list[str]:
    """The statistics report of the stats app, when it is installed and routed."""
    from django.urls import NoReverseMatch, reverse

    try:
        return [reverse("stats:study_report", kwargs={"slug": "river"})]
    except NoReverseMatch:
        return []


@pytest.mark.parametrize("url", REPORT_URLS + _stats_report_urls())
def test_raters_cannot_open_reports_or_exports(
    rater_client: Client, study: Study, url: str
) -> None:
    response = rater_client.get(url)
    if url.startswith("/admin/"):  # not staff: the admin sends them to its own login
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    else:
        assert response.status_code == 403


def test_the_done_page_appears_when_nothing_is_left(rater_client: Client, study: Study) -> None:
    for _ in range(3):
        assignment_id, _ = _open_next(rater_client)
        rater_client.post(f"/annotation/river/rate/{assignment_id}/", FORM_SCORES)
    html = rater_client.get("/annotation/river/rate/").content.decode()
    assert "nothing more for you to rate" in html
    assert "You rated 3 items." in html


def test_the_rating_page_is_translated_to_thai(rater_client: Client, study: Study) -> None:
    response = rater_client.get("/annotation/river/rate/", follow=True, HTTP_ACCEPT_LANGUAGE="th")
    html = response.content.decode()
    assert 'lang="th"' in html
    assert "ข้อที่ 1 จาก 3" in html
    assert "ความถูกต้องของคำถาม" in html
    assert "ปรับปรุง" in html


def test_the_researcher_page_shows_progress_failures_and_speeders(
    researcher_client: Client, rater_client: Client, study: Study
) -> None:
    assignment_id, _ = _open_next(rater_client)
    rater_client.post(
        f"/annotation/river/rate/{assignment_id}/", {**FORM_SCORES, "time_spent_ms": "900"}
    )
    html = researcher_client.get("/annotation/river/").content.decode()
    assert "<td>rat</td><td>1</td>" in html  # rater row: 1 completed
    assert "Speeders" in html and "0.9" in html
    assert SECRET_SOURCES[0] in html  # researchers do see sources


def test_researchers_export_csv_and_jsonl(
    researcher_client: Client, rater_client: Client, study: Study
) -> None:
    assignment_id, _ = _open_next(rater_client)
    rater_client.post(f"/annotation/river/rate/{assignment_id}/", FORM_SCORES)

    def body(url: str) -> str:
        response = researcher_client.get(url)
        assert response.status_code == 200
        return b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]

    csv_text = body("/annotation/river/export.csv")
    assert csv_text.splitlines()[0].startswith("rater,item,target,criterion,score,source")
    assert len(csv_text.splitlines()) == 5
    assert csv_text == export_to_string(study, "csv")
    jsonl = body("/annotation/river/export.jsonl")
    assert len(jsonl.splitlines()) == 4
    assert jsonl == export_to_string(study, "jsonl")
    assert researcher_client.get("/annotation/river/export.xml").status_code == 404


def test_a_researcher_creates_a_study_from_an_uploaded_file(researcher_client: Client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = (
        '{"id": "a", "background": "B1", "question": "Q1", "answer": "A1"}\n'
        '{"id": "b", "background": "B2", "question": "Q2", "answer": "A2", "source": "ref"}\n'
    )
    upload = SimpleUploadedFile("model-x.jsonl", body.encode(), content_type="application/json")
    response = researcher_client.post(
        "/annotation/new/",
        {
            "title": "Uploaded",
            "slug": "uploaded",
            "instructions": "Rate it",
            "scale": "1-5",
            "raters_per_item": 2,
            "items_per_rater": 0,
            "lease_minutes": 10,
            "items_file": upload,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    study = Study.objects.get(slug="uploaded")
    assert (study.scale_min, study.scale_max, study.lease_seconds) == (1, 5, 600)
    assert sorted(study.items.values_list("source", flat=True)) == ["model-x.jsonl", "ref"]
