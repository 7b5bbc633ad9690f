"""A rater logs in and rates with the keyboard only, in headless Chromium on a phone screen."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from annotation.models import Assignment, AssignmentStatus, Rating, Study

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("CONVGEN_SCREENSHOTS", "")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(autouse=True)
def _sync_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API runs an event loop in this thread; the ORM calls here are still safe.

    Set per test (not at import) so that it never leaks into other tests or their subprocesses.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _no_earlier_login_failures() -> None:
    """Other tests' failed logins from 127.0.0.1 must not rate-limit this one."""
    from django.core.cache import cache

    cache.clear()


def _is_rate_page(url: str, not_this: str) -> bool:
    return url != not_this and re.search(r"/rate/\d+/$", url) is not None


def _checked(page: Any, name: str) -> str | None:
    return page.eval_on_selector_all(
        f'input[name="{name}"]', "els => (els.find(e => e.checked) || {}).value || null"
    )


@pytest.mark.django_db(transaction=True)
def test_a_rater_rates_with_the_keyboard_only_on_a_phone(
    live_server: Any, rater: Any, study: Study
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
            page = context.new_page()
            page.set_default_timeout(15000)
            dialogs: list[str] = []

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)

            page.goto(f"{live_server.url}/accounts/login/?next=/annotation/river/rate/")
            # The username field has autofocus; Chromium may apply it just after "load".
            page.wait_for_function("document.activeElement?.id === 'id_username'")
            page.keyboard.type("rat")
            page.keyboard.press("Tab")
            page.keyboard.type("pw-for-tests-1")
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r"/annotation/river/rate/\d+/$"))
            assert "Item 1 of 3" in page.inner_text("#progress-text")
            first_url = page.url
            if SCREENSHOTS:  # for a human look: CONVGEN_SCREENSHOTS=/some/dir pytest ...
                page.screenshot(path=str(Path(SCREENSHOTS) / "rate-phone.png"), full_page=True)
            # Nothing overflows sideways on a phone.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

            for key in "3212":
                page.keyboard.press(key)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: _is_rate_page(url, first_url))
            assert "Item 2 of 3" in page.inner_text("#progress-text")
            second_url = page.url

            # Back to the first item: the given scores are shown and can be changed.
            page.keyboard.press("Backspace")
            page.wait_for_url(first_url)
            assert _checked(page, "question__correctness") == "3"
            assert _checked(page, "answer__creativity") == "2"
            for key in "1111":
                page.keyboard.press(key)
            page.keyboard.press("Enter")
            page.wait_for_url(second_url)  # back to the item left open

            # Enter with a scale unrated does not submit; it moves focus to the missing scale.
            page.keyboard.press("2")
            page.keyboard.press("Enter")
            assert page.url == second_url
            assert page.evaluate("document.activeElement.name") == "question__creativity"
            for key in "333":
                page.keyboard.press(key)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: _is_rate_page(url, second_url))
            assert "Item 3 of 3" in page.inner_text("#progress-text")
            for key in "2222":
                page.keyboard.press(key)
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r"/annotation/river/rate/$"))
            assert "nothing more for you to rate" in page.inner_text("main")
            assert dialogs == []  # the <script> in the generated text never ran
        finally:
            browser.close()

    done = Assignment.objects.filter(rater=rater, status=AssignmentStatus.COMPLETED)
    assert done.count() == 3
    assert Rating.objects.filter(assignment__rater=rater).count() == 12
    first = done.order_by("pk").first()
    assert first is not None
    scores = set(first.ratings.values_list("score", flat=True))
    assert scores == {1}
    assert all(a.time_spent_ms is not None for a in done)
