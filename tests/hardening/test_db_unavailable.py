"""A request that loses its database connection answers 503 + Retry-After (any database)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client

from annotation.models import Study
from tests.annotation.factories import make_study


@pytest.fixture
def study(db: None) -> Study:
    return make_study(n_items=2, k=1, slug="lost")


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
    ],
)
def test_the_api_answers_503_with_retry_after_when_the_connection_is_lost(
    rater_client: Client, study: Study, error: Exception
) -> None:
    with mock.patch("annotation.allocation.next_assignment", side_effect=error):
        response = rater_client.get("/api/studies/lost/next/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["detail"].startswith("The database is briefly unavailable.")
    # Once the database answers again, so does the API.
    assert rater_client.get("/api/studies/lost/next/").status_code == 200


def test_a_page_answers_503_too_and_other_errors_stay_500(
    rater_client: Client, study: Study
) -> None:
    rater_client.raise_request_exception = False
    with mock.patch("annotation.allocation.next_assignment", side_effect=OperationalError("x")):
        response = rater_client.get("/annotation/lost/rate/")
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert b"try again in a few seconds" in response.content
    with mock.patch("annotation.allocation.next_assignment", side_effect=RuntimeError("bug")):
        response = rater_client.get("/annotation/lost/rate/")
    assert response.status_code == 500
    assert not response.has_header("Retry-After")


def test_a_thai_rater_reads_the_503_page_in_thai(rater_client: Client, study: Study) -> None:
    rater_client.raise_request_exception = False
    with mock.patch("annotation.allocation.next_assignment", side_effect=OperationalError("x")):
        response = rater_client.get("/annotation/lost/rate/", HTTP_ACCEPT_LANGUAGE="th")
    assert response.status_code == 503
    body = response.content.decode()
    assert "ฐานข้อมูลไม่พร้อมใช้งานชั่วคราว" in body and "briefly unavailable" not in body
