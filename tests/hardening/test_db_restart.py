"""Raters keep rating while PostgreSQL drops every connection (what clients see of a restart).

Raters go through the real WSGI stack (`WSGIHandler`, as gunicorn calls it: middleware, DRF,
persistent per-thread connections with health checks) and retry a failed request with the same
submission_key. A killer thread calls pg_terminate_backend on every connection the raters hold,
again and again. Afterwards every acknowledged rating must be stored exactly once and the item
counters must equal the real counts. PostgreSQL only: SQLite has no server to lose.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import psycopg
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test.client import RequestFactory
from rest_framework.authtoken.models import Token

from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study
from tests.annotation.factories import make_rater, make_study
from tests.hardening.conftest import is_postgres

APP_NAME = f"convgen-hardening-{os.getpid()}"
CRITERIA = [(t, c) for t in ("question", "answer") for c in ("correctness", "creativity")]
MAX_ATTEMPTS = 200

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def postgres_only() -> None:
    if not is_postgres():
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has no server connection to lose")


@pytest.fixture
def persistent_named_connections() -> Iterator[None]:
    """Connections opened from now on live across requests (CONN_MAX_AGE as in production) and
    carry an application_name, so the killer ends only this test's connections."""
    settings_dict = connections.settings["default"]
    saved = (settings_dict["CONN_MAX_AGE"], dict(settings_dict.get("OPTIONS") or {}))
    settings_dict["CONN_MAX_AGE"] = 60
    settings_dict["OPTIONS"] = {**saved[1], "application_name": APP_NAME}
    assert settings_dict["CONN_HEALTH_CHECKS"] is True  # what makes an idle loss invisible
    try:
        yield
    finally:
        settings_dict["CONN_MAX_AGE"], settings_dict["OPTIONS"] = saved
        connection.close()  # the main thread's connection may be gone; reopen it cleanly


def _terminate_all() -> int:
    """pg_terminate_backend on every connection of this test's raters; returns how many."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
            (db["NAME"], APP_NAME),
        ).fetchone()
    return int(row[0]) if row else 0


class Rater:
    """One rater's client: calls the WSGI application the way a WSGI server thread does."""

    handler = WSGIHandler()

    def __init__(self, token: str) -> None:
        self.token = token
        self.failures: Counter[int] = Counter()
        self.retry_after: set[str] = set()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        factory = RequestFactory()
        auth = {"HTTP_AUTHORIZATION": f"Token {self.token}"}
        if method == "GET":
            request = factory.get(path, **auth)  # type: ignore[arg-type]
        else:
            request = factory.post(path, json.dumps(body), content_type="application/json", **auth)  # type: ignore[arg-type]
        status: list[int] = []
        headers: dict[str, str] = {}

        def start_response(line: str, pairs: list[tuple[str, str]], *_: Any) -> None:
            status.append(int(line.split()[0]))
            headers.update(pairs)

        result = self.handler(request.environ, cast(Any, start_response))
        try:
            content = b"".join(result)
        finally:
            result.close()  # fires request_finished, as a WSGI server does
        if status[0] >= 500 and "Retry-After" in headers:
            self.retry_after.add(headers["Retry-After"])
        return status[0], json.loads(content) if content.startswith((b"{", b"[")) else content

    def call_until_answered(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Retry server errors (the same body, so the same submission_key) until answered."""
        for _ in range(MAX_ATTEMPTS):
            code, data = self.call(method, path, body)
            if code < 500:
                return code, data
            self.failures[code] += 1
            time.sleep(random.uniform(0.005, 0.03))  # a real client honours Retry-After
        raise AssertionError(f"{method} {path}: no answer after {MAX_ATTEMPTS} attempts")


def _rate_until_done(rater: Rater, slug: str, acked: list[dict[str, Any]], errors: list[str]):
    rng = random.Random(rater.token)
    try:
        while True:
            code, data = rater.call_until_answered("GET", f"/api/studies/{slug}/next/")
            if code == 404:
                return
            assert code == 200, (code, data)
            scores = {pair: rng.randint(1, 3) for pair in CRITERIA}
            body = {
                "submission_key": uuid.uuid4().hex,
                "ratings": [
                    {"target": t, "criterion": c, "score": s} for (t, c), s in scores.items()
                ],
                "time_spent_ms": 1000,
            }
            path = f"/api/assignments/{data['id']}/ratings/"
            code, stored = rater.call_until_answered("POST", path, body)
            assert code in (200, 201), (code, stored)
            acked.append({"id": data["id"], "key": body["submission_key"], "scores": scores})
    except BaseException as exc:  # surfaced by the main thread
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        connections.close_all()


def _check_everything_stored(study: Study, acked: list[dict[str, Any]], k: int) -> None:
    # Every acknowledged rating set is stored, with its key and every score, exactly once.
    assert len({a["id"] for a in acked}) == len(acked)
    for ack in acked:
        assignment = Assignment.objects.get(pk=ack["id"])
        assert (assignment.status, assignment.submission_key) == (
            AssignmentStatus.COMPLETED,
            ack["key"],
        )
        stored = {(r.target, r.criterion): r.score for r in assignment.ratings.all()}
        assert stored == ack["scores"]
    completed = Assignment.objects.filter(item__study=study, status=AssignmentStatus.COMPLETED)
    assert completed.count() == len(acked)  # nothing stored that nobody was told about
    assert Rating.objects.filter(assignment__item__study=study).count() == 4 * len(acked)
    for item in Item.objects.filter(study=study):
        done = item.assignments.filter(status=AssignmentStatus.COMPLETED).count()
        leased = item.assignments.filter(status=AssignmentStatus.LEASED).count()
        assert (item.completed_count, item.leased_count) == (done, leased)
        assert done == k  # every item reached k, none went over


def test_no_acknowledged_rating_is_lost_while_connections_are_killed(
    postgres_only: None, persistent_named_connections: None
) -> None:
    n_items, k, n_raters = 16, 2, 4
    study = make_study(n_items=n_items, k=k, slug="restart")
    raters = [
        Rater(Token.objects.create(user=make_rater(f"rater{i}")).key) for i in range(n_raters)
    ]
    acked: list[dict[str, Any]] = []
    errors: list[str] = []
    stop = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        while not stop.is_set():
            kills.append(_terminate_all())
            time.sleep(random.uniform(0.01, 0.08))

    threads = [
        threading.Thread(target=_rate_until_done, args=(r, study.slug, acked, errors))
        for r in raters
    ]
    kill_thread = threading.Thread(target=killer)
    kill_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    stop.set()
    kill_thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a rater hung"
    assert errors == []

    failures = sum((r.failures for r in raters), Counter())
    assert sum(kills) >= 10, kills  # connections really were dropped, many times
    assert sum(failures.values()) >= 1, "no request was hit by a kill: the test proved nothing"
    assert set(failures) == {503}, failures  # a lost connection is a 503, never a 500
    assert set().union(*(r.retry_after for r in raters)) == {"5"}
    connection.close()
    _check_everything_stored(study, acked, k)
    assert len(acked) == n_items * k
    print(f"kills={sum(kills)} failed_requests={dict(failures)} acknowledged={len(acked)}")


def test_a_restart_between_requests_is_invisible_to_clients(
    postgres_only: None, persistent_named_connections: None
) -> None:
    study = make_study(n_items=6, k=3, slug="idle-restart")
    raters = [Rater(Token.objects.create(user=make_rater(f"idle{i}")).key) for i in range(3)]
    barrier = threading.Barrier(len(raters) + 1)
    results: list[tuple[int, int]] = []
    errors: list[str] = []

    def work(rater: Rater) -> None:
        try:
            for _ in range(2):
                code, _data = rater.call("GET", f"/api/studies/{study.slug}/next/")
                barrier.wait(timeout=60)  # the main thread kills connections now
                barrier.wait(timeout=60)
                code2, data = rater.call("GET", f"/api/studies/{study.slug}/next/")
                results.append((code, code2))
                body = {"ratings": [{"target": t, "criterion": c, "score": 2} for t, c in CRITERIA]}
                code3, _ = rater.call("POST", f"/api/assignments/{data['id']}/ratings/", body)
                results.append((code3, code3))
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for thread in threads:
        thread.start()
    killed = []
    for _ in range(2):
        barrier.wait(timeout=60)
        killed.append(_terminate_all())  # each rater's persistent connection, while idle
        barrier.wait(timeout=60)
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert min(killed) >= len(raters)  # (the main thread's connection may be one more)
    # The health check at the start of the next request found each dead connection and opened
    # a new one: no client saw an error.
    assert sorted(results) == [(200, 200)] * 6 + [(201, 201)] * 6
    connection.close()
    assert (
        Assignment.objects.filter(item__study=study, status=AssignmentStatus.COMPLETED).count() == 6
    )
