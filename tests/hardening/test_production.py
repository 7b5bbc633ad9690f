"""With the production environment (DEBUG=0 and the documented variables) the site shows no
debug pages, sends the security headers and redirects to HTTPS; checked in a fresh process,
since these settings are computed when the settings module loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.prod_probe import TRACEBACK_MARKER
from tests.site.test_deploy_settings import PRODUCTION_ENV

ROOT = Path(__file__).resolve().parents[2]
# What Django's debug pages (and tracebacks) contain; none of it may reach a browser.
DEBUG_SIGNS = ("Traceback", TRACEBACK_MARKER, "DEBUG = True", "Request Method:", "urlpatterns",
               "Using the URLconf", "Django settings", "site-packages", ".py", "RuntimeError",
               "OperationalError")  # fmt: skip


def _probe(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.update(
        PRODUCTION_ENV,
        DATABASE_URL=f"sqlite:///{tmp_path / 'never-used.sqlite3'}",
        CONVGEN_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SETTINGS_MODULE="convgen_site.settings",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.hardening.prod_probe"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe: dict[str, Any] = json.loads(result.stdout)
    return probe


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _probe(tmp_path_factory.mktemp("prod"))


def test_debug_is_off(production: dict[str, Any]) -> None:
    assert production["debug"] is False


@pytest.mark.parametrize(
    ("page", "status"),
    [("missing", 404), ("api_missing", 404), ("boom", 500), ("db_gone", 503), ("db_gone_api", 503)],
)
def test_error_pages_show_no_debug_information(
    production: dict[str, Any], page: str, status: int
) -> None:
    shown = production["pages"][page]
    assert shown["status"] == status
    body = shown["body"]
    assert [sign for sign in DEBUG_SIGNS if sign in body] == []
    assert production["secret_key"] not in body
    assert len(body) < 2000  # a short error page, not a report


def test_a_lost_database_asks_clients_to_retry(production: dict[str, Any]) -> None:
    page, api = production["pages"]["db_gone"], production["pages"]["db_gone_api"]
    assert page["headers"]["Retry-After"] == api["headers"]["Retry-After"] == "5"
    assert api["headers"]["Content-Type"] == "application/json"
    assert "try again in a few seconds" in json.loads(api["body"])["detail"]


def test_plain_http_is_redirected_to_https(production: dict[str, Any]) -> None:
    page = production["pages"]["http_login"]
    assert page["status"] == 301
    assert page["headers"]["Location"] == "https://convgen.example.org/accounts/login/"


@pytest.mark.parametrize("page", ["login", "missing", "api_anonymous", "boom", "db_gone"])
def test_every_response_carries_the_security_headers(production: dict[str, Any], page: str) -> None:
    headers = production["pages"][page]["headers"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    if page in ("login", "missing", "boom"):  # HTML pages (the API answers JSON)
        assert headers["X-Frame-Options"] == "DENY"


def test_cookies_are_secure_and_the_login_page_is_not_framed(production: dict[str, Any]) -> None:
    login = production["pages"]["login"]
    assert login["status"] == 200
    assert login["cookies"]["csrftoken"]["secure"] is True
    assert login["headers"]["X-Frame-Options"] == "DENY"


def test_hsts_follows_its_documented_variable(tmp_path: Path) -> None:
    """While TLS is being rolled out, SECURE_HSTS_SECONDS=0 turns HSTS off (docs/deployment.md)."""
    headers = _probe(tmp_path, SECURE_HSTS_SECONDS="0")["pages"]["login"]["headers"]
    assert "Strict-Transport-Security" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    headers = _probe(tmp_path, SECURE_HSTS_SECONDS="600", SECURE_HSTS_PRELOAD="0")["pages"][
        "login"
    ]["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"
