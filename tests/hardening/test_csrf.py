"""Every URL of the site refuses a POST from a signed-in browser without a valid CSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils.crypto import get_random_string

from tests.hardening.site_map import SitePath, site_paths

TOKEN = get_random_string(32)  # a CSRF secret; the cookie holds it, the form/header repeats it


def _is_csrf_failure(response: Any) -> bool:
    return response.status_code == 403 and b"CSRF" in response.content


def _takes_no_post(response: Any) -> bool:
    """A 4xx from a view whose Allow header leaves POST out (the API docs): nothing to forge."""
    allowed = response.get("Allow")
    return response.status_code in (403, 405) and allowed is not None and "POST" not in allowed


def _refused(response: Any) -> bool:
    return _is_csrf_failure(response) or _takes_no_post(response)


def _browser(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies[settings.CSRF_COOKIE_NAME] = TOKEN
    return client


@pytest.fixture
def paths() -> list[SitePath]:
    found, unsampled = site_paths()
    assert unsampled == [], "URL patterns the walker could not turn into a path"
    names = {p.url_name for p in found}
    # The walk reaches every app (and so any page added to them later).
    assert {"login", "logout", "annotation:study_create", "stats:report_from_csv",
            "modeling:generation_new", "study-next", "assignment-submit-ratings",
            "admin:index"} <= names  # fmt: skip
    return found


@pytest.mark.django_db
def test_every_url_refuses_a_post_without_a_csrf_token(
    paths: list[SitePath], researcher: User
) -> None:
    client = _browser(researcher)
    responses = {p.path: client.post(p.path, {"x": "1"}) for p in paths}
    assert [path for path, r in responses.items() if not _refused(r)] == []
    # All but the API docs page (which takes no POST) are the CSRF check's own refusals.
    assert [path for path, r in responses.items() if not _is_csrf_failure(r)] == ["/api/docs/"]


@pytest.mark.django_db
def test_every_url_refuses_a_wrong_token_and_a_cross_site_origin(
    paths: list[SitePath], researcher: User
) -> None:
    client = _browser(researcher)
    wrong = get_random_string(32)
    wrong_token = [
        p.path for p in paths if not _refused(client.post(p.path, HTTP_X_CSRFTOKEN=wrong))
    ]
    cross_site = [
        p.path
        for p in paths
        if not _refused(
            client.post(p.path, HTTP_X_CSRFTOKEN=TOKEN, HTTP_ORIGIN="https://evil.example")
        )
    ]
    assert (wrong_token, cross_site) == ([], [])


@pytest.mark.django_db
def test_with_the_token_every_url_passes_the_check_and_none_fails_with_a_500(
    paths: list[SitePath], researcher: User
) -> None:
    """The refusals above are the CSRF check's, not something else's: with the token they go."""
    problems = []
    for p in paths:
        client = _browser(researcher)  # afresh: one of these paths is logout
        client.raise_request_exception = False
        response = client.post(p.path, HTTP_X_CSRFTOKEN=TOKEN)
        if _is_csrf_failure(response) or response.status_code >= 500:
            problems.append((p.path, response.status_code))
    assert problems == []
