"""In Chromium, under the Content-Security-Policy: no page logs a violation, Swagger UI renders
from the site's own files, and the language menu (no inline handler now) still switches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.annotation.factories import make_study
from tests.hardening.site_map import site_paths

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(autouse=True)
def _sync_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.mark.django_db(transaction=True)
def test_no_page_breaks_the_policy_and_swagger_ui_works(live_server: Any, researcher: Any) -> None:
    from playwright.sync_api import sync_playwright

    make_study(slug="csp")
    client = Client()
    client.force_login(researcher)
    client.raise_request_exception = False
    paths = []  # every page a researcher can GET as HTML
    for site_path in site_paths()[0]:
        response = client.get(site_path.path)
        html = "text/html" in response.get("Content-Type", "")
        if response.status_code == 200 and html and "logout" not in site_path.path:
            paths.append(site_path.path)
    assert len(paths) > 10
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(15000)
            page.on(
                "console",
                lambda msg: (
                    violations.append(f"{page.url}: {msg.text}")
                    if "Content Security Policy" in msg.text
                    else None
                ),
            )
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("#id_username", "res")
            page.fill("#id_password", "pw-for-tests-1")
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server.url}/")
            for path in [*paths, "/admin/", "/api/docs/"]:
                page.goto(f"{live_server.url}{path}")
                page.wait_for_load_state("load")
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector("#swagger-ui .info", timeout=20000)
            assert "convgen API" in page.inner_text("#swagger-ui .info")
            page.goto(f"{live_server.url}/")
            page.select_option("select[name=language]", "th")
            page.wait_for_selector("html[lang=th]")
        finally:
            browser.close()
    assert violations == []
