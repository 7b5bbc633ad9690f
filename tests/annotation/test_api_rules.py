"""The API applies the pages' rules (issue 13): who may rate, whether the study is open; ids and
counts say nothing about other raters; one 201 per assignment; keys and reasons checked."""

from __future__ import annotations

import re
import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from annotation import allocation
from annotation.models import Assignment, AssignmentStatus, Rating, Study
from tests.annotation.factories import FULL_SET, make_rater, make_study

pytestmark = pytest.mark.django_db


def _page(client: Client, path: str) -> str:
    """The page without its per-response CSRF token."""
    text = client.get(path).content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", text)


def _next_id(client: APIClient, slug: str = "river") -> int:
    response = client.get(f"/api/studies/{slug}/next/")
    assert response.status_code == 200, response.content
    return int(response.json()["id"])


def _submit(client: APIClient, assignment_id: int, ratings=FULL_SET, headers=None, **extra):
    return client.post(
        f"/api/assignments/{assignment_id}/ratings/",
        {"ratings": ratings, **extra},
        format="json",
        headers=headers or {},
    )


def test_a_rater_removed_from_the_study_is_refused_on_every_api_path(
    rater_api: APIClient, rater: User, other_rater: User, study: Study
) -> None:
    study.raters.set([rater, other_rater])
    leased = _next_id(rater_api)
    study.raters.set([other_rater])  # removed after leasing an item
    base = f"/api/assignments/{leased}"
    assert _submit(rater_api, leased).status_code == 403
    assert rater_api.post(f"{base}/skip/", {"reason": "x"}, format="json").status_code == 403
    assert rater_api.post(f"{base}/flag/", {}, format="json").status_code == 403
    assert rater_api.get(f"{base}/").status_code == 403
    assert rater_api.get("/api/studies/river/next/").status_code == 403
    assert not Rating.objects.exists()


def test_a_closed_study_refuses_next_submit_changes_and_skips(
    rater_api: APIClient, study: Study
) -> None:
    done = _next_id(rater_api)
    assert _submit(rater_api, done, submission_key="first").status_code == 201
    open_one = _next_id(rater_api)
    study.is_open = False
    study.save()
    assert rater_api.get("/api/studies/river/next/").status_code == 404
    assert _submit(rater_api, open_one).status_code == 403
    changed = [dict(r, score=1) for r in FULL_SET]
    assert _submit(rater_api, done, changed, submission_key="second").status_code == 403
    skip = rater_api.post(f"/api/assignments/{open_one}/skip/", {"reason": "x"}, format="json")
    assert skip.status_code == 403
    assert {r.score for r in Rating.objects.all()} == {r["score"] for r in FULL_SET}
    # A replay of what was stored still answers (a retry after a lost response).
    assert _submit(rater_api, done, submission_key="first").status_code == 200


def test_the_rating_page_refuses_a_closed_study_too(rater_client: Client, study: Study) -> None:
    response = rater_client.get("/annotation/river/rate/")
    assert response.status_code == 302
    study.is_open = False
    study.save()
    data = {f"{r['target']}__{r['criterion']}": r["score"] for r in FULL_SET}
    rater_client.post(response["Location"], data)
    assert not Rating.objects.exists()


def test_another_raters_assignment_is_a_404_like_a_missing_one(
    rater_api: APIClient, other_api: APIClient, rater_client: Client, study: Study
) -> None:
    theirs = _next_id(other_api)
    missing = theirs + 1000
    for assignment_id in (theirs, missing):
        assert rater_api.get(f"/api/assignments/{assignment_id}/").status_code == 404
        assert _submit(rater_api, assignment_id).status_code == 404
        skip = rater_api.post(f"/api/assignments/{assignment_id}/skip/", {"reason": "x"})
        assert skip.status_code == 404
        assert rater_client.get(f"/annotation/river/rate/{assignment_id}/").status_code == 404


def test_a_raters_counts_do_not_move_when_others_rate(
    rater: User, rater_client: Client, other_api: APIClient, study: Study
) -> None:
    before = allocation.progress(study, rater)
    page_before = _page(rater_client, "/annotation/")
    for _ in range(2):  # another rater takes and completes items (k=2, three items)
        assert _submit(other_api, _next_id(other_api)).status_code == 201
    assert allocation.progress(study, rater) == before
    assert _page(rater_client, "/annotation/") == page_before


def test_an_idempotency_key_longer_than_stored_is_a_400_not_cut(
    rater_api: APIClient, study: Study
) -> None:
    assignment_id = _next_id(rater_api)
    key = "k" * 64
    response = _submit(rater_api, assignment_id, headers={"Idempotency-Key": key + "-a"})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert _submit(rater_api, assignment_id, headers={"Idempotency-Key": key}).status_code == 201
    changed = [dict(r, score=1) for r in FULL_SET]
    again = _submit(rater_api, assignment_id, changed, headers={"Idempotency-Key": key})
    assert again.status_code == 200
    assert {r.score for r in Rating.objects.all()} == {r["score"] for r in FULL_SET}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("skip", {}, 400),  # a reason is required to skip
        ("skip", {"reason": "   "}, 400),
        ("skip", {"reason": 12}, 400),  # a number is not a string
        ("skip", {"reason": "bad\x00text"}, 400),
        ("flag", {"reason": 12}, 400),
        ("flag", {"reason": "bad\x00text"}, 400),
        ("flag", {}, 200),  # flagging needs no reason
        ("skip", {"reason": "I do not know the topic"}, 200),
    ],
)
def test_skip_and_flag_reasons_are_checked_one_way(
    rater_api: APIClient, study: Study, path: str, body: dict, status: int
) -> None:
    assignment_id = _next_id(rater_api)
    response = rater_api.post(f"/api/assignments/{assignment_id}/{path}/", body, format="json")
    assert response.status_code == status, response.content


def test_the_schema_documents_errors_and_the_required_skip_reason(api_client: APIClient) -> None:
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for path, operation in [
        ("/api/assignments/{id}/ratings/", "post"),
        ("/api/assignments/{id}/skip/", "post"),
        ("/api/assignments/{id}/flag/", "post"),
        ("/api/studies/{slug}/next/", "get"),
    ]:
        assert {"400", "403", "404"} <= set(paths[path][operation]["responses"]), path
    skip = paths["/api/assignments/{id}/skip/"]["post"]["requestBody"]["content"]
    ref = skip["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema["components"]["schemas"][ref]["required"] == ["reason"]


def test_a_non_ascii_digit_time_on_the_page_is_ignored_not_a_500(
    rater_client: Client, study: Study
) -> None:
    location = rater_client.get("/annotation/river/rate/")["Location"]
    data = {f"{r['target']}__{r['criterion']}": r["score"] for r in FULL_SET}
    response = rater_client.post(location, {**data, "time_spent_ms": "²"})
    assert response.status_code == 302
    assert Assignment.objects.get().status == AssignmentStatus.COMPLETED


def test_a_nul_in_a_skip_reason_on_the_page_is_a_form_error(
    rater_client: Client, study: Study
) -> None:
    location = rater_client.get("/annotation/river/rate/")["Location"]
    response = rater_client.post(location, {"action": "skip", "skip_reason": "a\x00b"})
    assert response.status_code == 400
    assert Assignment.objects.get().status == AssignmentStatus.LEASED


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_of_one_assignment_answer_one_201_and_the_rest_200() -> None:
    make_study(n_items=2, k=2, slug="race")
    rater = make_rater("racer")
    client = APIClient()
    client.force_authenticate(rater)
    assignment_id = _next_id(client, "race")
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def submit(i: int) -> None:
        own = APIClient()
        own.force_authenticate(rater)
        barrier.wait()
        try:
            codes.append(_submit(own, assignment_id, submission_key=f"click-{i}").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 200, 200, 201]
    assert Rating.objects.filter(assignment_id=assignment_id).count() == len(FULL_SET)
