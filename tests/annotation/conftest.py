"""Fixtures of the annotation tests: a study whose items carry telltale source names."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.items import ItemRow
from annotation.models import Study
from annotation.studies import StudySpec, create_study
from tests.annotation.factories import make_rater

SECRET_SOURCES = ("llama-7b-lora-secret", "gpt-reference-secret")


@pytest.fixture
def study(db: None) -> Study:
    """Three items from two sources, k=2; the ids also name the source (raters must not see it)."""
    rows = [
        ItemRow(
            external_id=f"{SECRET_SOURCES[i % 2]}-{i}",
            background=f"Background {i}: the river <b>flows</b> north.",
            question=f"Question {i}: which way? <script>alert('q{i}')</script>",
            answer=f"Answer {i}: north. <img src=x onerror=alert(1)>",
            source=SECRET_SOURCES[i % 2],
        )
        for i in range(3)
    ]
    spec = StudySpec(title="River study", slug="river", raters_per_item=2, seed=3)
    return create_study(spec, rows)


@pytest.fixture
def other_rater(db: None) -> User:
    return make_rater("other")


@pytest.fixture
def rater_api(rater: User) -> APIClient:
    """A rater on the API with token auth (what the load benchmark uses)."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=rater)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def other_api(other_rater: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(other_rater)
    return client


@pytest.fixture
def researcher_api(researcher: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(researcher)
    return client
