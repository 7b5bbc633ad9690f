"""REST API: next item, idempotent submit, field errors, ownership, researcher-only reads."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from annotation.models import Assignment, Item, Rating, Study
from tests.annotation.conftest import SECRET_SOURCES
from tests.annotation.factories import FULL_SET

pytestmark = pytest.mark.django_db


def _next(client: APIClient, slug: str = "river") -> dict:
    response = client.get(f"/api/studies/{slug}/next/")
    assert response.status_code == 200, response.content
    return response.json()


def _submit(client: APIClient, assignment_id: int, ratings=FULL_SET, **extra):
    return client.post(
        f"/api/assignments/{assignment_id}/ratings/",
        {"ratings": ratings, **extra},
        format="json",
    )


def test_a_rater_lists_their_studies(rater_api: APIClient, study: Study) -> None:
    body = rater_api.get("/api/studies/").json()
    assert [s["slug"] for s in body["results"]] == ["river"]
    assert body["results"][0]["scale"] == {
        "min": 1,
        "max": 3,
        "labels": {"1": "needs improvement", "2": "fair", "3": "good"},
    }
    assert len(body["results"][0]["criteria"]) == 4


def test_next_gives_the_blind_item_with_progress(rater_api: APIClient, study: Study) -> None:
    body = rater_api.get("/api/studies/river/next/?progress=1").json()
    assert set(body) == {"id", "study", "status", "leased_until", "item", "ratings", "progress"}
    assert set(body["item"]) == {"background", "question", "answer"}
    assert body["progress"] == {"done": 0, "current": 1, "total": 3}
    assert body["status"] == "leased"
    assert _next(rater_api)["progress"] is None  # not asked for: one query less


def test_no_rater_response_names_a_source_or_model(rater_api: APIClient, study: Study) -> None:
    texts = [rater_api.get("/api/studies/").content, rater_api.get("/api/studies/river/").content]
    for _ in range(3):
        response = rater_api.get("/api/studies/river/next/")
        texts.append(response.content)
        assignment_id = response.json()["id"]
        texts.append(rater_api.get(f"/api/assignments/{assignment_id}/").content)
        texts.append(_submit(rater_api, assignment_id).content)
    texts.append(rater_api.get("/api/studies/river/next/").content)
    blob = b"\n".join(texts).decode()
    for secret in (*SECRET_SOURCES, "secret", "source", "conversation", "external_id"):
        assert secret not in blob


def test_next_is_404_when_the_rater_is_done(rater_api: APIClient, study: Study) -> None:
    for _ in range(3):
        assert _submit(rater_api, _next(rater_api)["id"]).status_code == 201
    response = rater_api.get("/api/studies/river/next/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Nothing left to rate in this study."}


def test_submitting_twice_stores_one_rating_set(rater_api: APIClient, study: Study) -> None:
    assignment_id = _next(rater_api)["id"]
    first = _submit(rater_api, assignment_id, submission_key="abc")
    retry = _submit(rater_api, assignment_id, submission_key="abc")
    header_retry = rater_api.post(
        f"/api/assignments/{assignment_id}/ratings/",
        {"ratings": FULL_SET},
        format="json",
        HTTP_IDEMPOTENCY_KEY="abc",
    )
    assert (first.status_code, retry.status_code, header_retry.status_code) == (201, 200, 200)
    assert first.json() == retry.json()
    assert Rating.objects.filter(assignment_id=assignment_id).count() == 4
    assert Item.objects.get(assignments__id=assignment_id).completed_count == 1


def test_an_off_scale_score_is_a_400_naming_the_field(rater_api: APIClient, study: Study) -> None:
    assignment_id = _next(rater_api)["id"]
    ratings = [dict(r) for r in FULL_SET]
    ratings[2]["score"] = 7
    response = _submit(rater_api, assignment_id, ratings=ratings)
    assert response.status_code == 400
    assert response.json() == {"ratings[2].score": ["score 7 is off the scale 1..3"]}
    assert not Rating.objects.exists()


def test_a_missing_criterion_is_a_400_naming_it(rater_api: APIClient, study: Study) -> None:
    assignment_id = _next(rater_api)["id"]
    response = _submit(rater_api, assignment_id, ratings=FULL_SET[:3])
    assert response.status_code == 400
    assert response.json() == {"answer/creativity": ["missing a score for answer creativity"]}


def test_a_rater_cannot_read_or_write_another_raters_assignment(
    rater_api: APIClient, other_api: APIClient, study: Study
) -> None:
    assignment_id = _next(rater_api)["id"]
    # 404, as for an id that does not exist: ids reveal nothing about other raters.
    assert other_api.get(f"/api/assignments/{assignment_id}/").status_code == 404
    assert _submit(other_api, assignment_id).status_code == 404
    skip = other_api.post(f"/api/assignments/{assignment_id}/skip/", {"reason": "x"})
    assert skip.status_code == 404
    assert other_api.post(f"/api/assignments/{assignment_id}/flag/", {}).status_code == 404
    assert Assignment.objects.get(pk=assignment_id).status == "leased"


@pytest.mark.parametrize("what", ["items", "assignments", "ratings"])
def test_a_rater_cannot_read_research_data(rater_api: APIClient, study: Study, what: str) -> None:
    assert rater_api.get(f"/api/studies/river/{what}/").status_code == 403


def test_researchers_read_items_assignments_and_ratings(
    rater_api: APIClient, researcher_api: APIClient, study: Study
) -> None:
    assignment_id = _next(rater_api)["id"]
    _submit(rater_api, assignment_id)
    items = researcher_api.get("/api/studies/river/items/").json()
    assert {i["source"] for i in items["results"]} == set(SECRET_SOURCES)
    assignments = researcher_api.get("/api/studies/river/assignments/").json()
    assert [a["status"] for a in assignments["results"]] == ["completed"]
    assert assignments["results"][0]["rater"] == "rat"
    ratings = researcher_api.get("/api/studies/river/ratings/").json()
    assert sorted((r["target"], r["criterion"], r["score"]) for r in ratings["results"]) == sorted(
        (r["target"], r["criterion"], r["score"]) for r in FULL_SET
    )
    read = researcher_api.get(f"/api/assignments/{assignment_id}/")
    assert read.status_code == 200


def test_skip_needs_a_reason_and_flag_does_not(rater_api: APIClient, study: Study) -> None:
    first = _next(rater_api)["id"]
    assert rater_api.post(f"/api/assignments/{first}/skip/", {}).status_code == 400
    skipped = rater_api.post(f"/api/assignments/{first}/skip/", {"reason": "unsure"})
    assert skipped.status_code == 200
    second = _next(rater_api)["id"]
    assert second != first
    assert rater_api.post(f"/api/assignments/{second}/flag/", {}).json()["status"] == "flagged"


def test_anonymous_callers_are_refused(api_client: APIClient, study: Study) -> None:
    assert api_client.get("/api/studies/").status_code in (401, 403)
    assert api_client.get("/api/studies/river/next/").status_code in (401, 403)


def test_a_rater_not_on_a_restricted_study_gets_403(
    rater_api: APIClient, other_rater, study: Study
) -> None:
    study.raters.set([other_rater])
    assert rater_api.get("/api/studies/").json()["results"] == []
    assert rater_api.get("/api/studies/river/next/").status_code in (403, 404)


def test_the_openapi_schema_documents_next_and_ratings(api_client: APIClient) -> None:
    response = api_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert "/api/studies/{slug}/next/" in schema["paths"]
    post = schema["paths"]["/api/assignments/{id}/ratings/"]["post"]
    assert "409" in post["responses"]


def test_next_on_a_closed_study_is_a_404_that_says_so(rater_api: APIClient, study: Study) -> None:
    study.is_open = False
    study.save()
    response = rater_api.get("/api/studies/river/next/")
    assert response.status_code == 404
    assert response.json() == {"detail": "This study is closed."}
