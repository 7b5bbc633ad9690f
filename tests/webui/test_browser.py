"""In headless Chromium: upload an OIG file, train on it, and watch a run's loss curve live."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from modeling.models import Dataset, RunStatus, TrainingRun
from tests.annotation.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.webui.conftest import HAND_BUILT_BYTES

SCREENSHOTS = os.environ.get("CONVGEN_SCREENSHOTS", "")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(autouse=True)
def _sync_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _no_earlier_login_failures() -> None:
    from django.core.cache import cache

    cache.clear()


def _login(page: Any, base: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/modeling/")
    page.fill("#id_username", "res")
    page.fill("#id_password", "pw-for-tests-1")
    page.press("#id_password", "Enter")
    page.wait_for_url(re.compile(r"/modeling/$"))


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:  # for a human look: CONVGEN_SCREENSHOTS=/some/dir pytest ...
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_upload_train_and_watch_the_loss_curve(
    live_server: Any, researcher: Any, tiny_model_dir: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    oig = tmp_path / "hand.jsonl"
    oig.write_bytes(HAND_BUILT_BYTES)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(20000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _login(page, live_server.url)

            page.click("#upload-oig")
            page.set_input_files("#id_file", str(oig))
            page.fill("#id_val_fraction", "0")
            page.click("#dataset-upload-submit")
            page.wait_for_selector("#manifest-counts")
            assert "16" in page.inner_text("#manifest-counts")
            assert "3, 13, 15" in page.inner_text("#manifest-malformed")
            _shot(page, "dataset.png")
            dataset = Dataset.objects.get()
            assert (dataset.status, dataset.n_train) == (RunStatus.SUCCEEDED, 5)

            page.click("#dataset-train")
            page.fill("#id_base_model", tiny_model_dir)
            for name, value in (("max_steps", "3"), ("logging_steps", "1"), ("eval_steps", "0")):
                page.fill(f"#id_{name}", value)
            page.fill("#id_micro_batch_size", "2")
            page.fill("#id_gradient_accumulation_steps", "1")
            page.click("#training-submit")
            page.wait_for_selector("#training-generate")  # eager Celery: finished already
            points = page.get_attribute("#loss-train", "points") or ""
            assert len(points.split()) == 3
            _shot(page, "training.png")

            # A queued run's page polls status.json and redraws the curve as points arrive.
            run = TrainingRun.objects.create(
                name="polled", base_model="m", output_dir=str(tmp_path / "o")
            )
            page.goto(f"{live_server.url}/modeling/runs/training/{run.pk}/")
            assert page.get_attribute("#loss-train", "points") == ""
            TrainingRun.objects.filter(pk=run.pk).update(
                status=RunStatus.RUNNING,
                step=2,
                total_steps=4,
                progress=0.5,
                loss_curve=[{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0, "eval_loss": 2.5}],
            )
            # Not wait_for_function: its polling evaluates a string, which the CSP forbids.
            expect(page.locator("#loss-train")).to_have_attribute(
                "points", re.compile(r"^\S+ \S+$"), timeout=15000
            )
            assert page.inner_text("#step-text") == "2 / 4"
            assert page.inner_text("#status-text") == "Running"
            assert len((page.get_attribute("#loss-eval", "points") or "").split()) == 1
            page.click("#training-cancel")
            page.wait_for_selector("#training-cancel[disabled]")
            assert TrainingRun.objects.get(pk=run.pk).cancel_requested
            assert errors == []
        finally:
            browser.close()
