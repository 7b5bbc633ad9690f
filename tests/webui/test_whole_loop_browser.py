"""The whole loop from the browser, in headless Chromium, on a tiny model built in the test.

A researcher uploads an OIG file, trains a LoRA run on it and watches its loss curve, generates
conversations with the adapter, creates a blind study from the run; a rater rates every item
with the keyboard; the researcher follows the progress, opens the report and downloads the
rated dataset. Celery runs eagerly (settings_test), so each submitted job has finished when the
page after the POST loads; the pages under test are the same ones a worker would update.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from annotation.models import Assignment, AssignmentStatus, Study
from modeling.models import Dataset, GenerationRun, RunStatus, TrainingRun
from modeling.prompting import render_oig
from tests.annotation.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

FACTS = [
    ("The river flows north through the valley.", "Which way does the river flow?", "North."),
    ("Photosynthesis makes sugar and oxygen.", "What does photosynthesis make?", "Sugar."),
    ("A prime has two divisors.", "How many divisors has a prime?", "Two."),
]


@pytest.fixture(autouse=True)
def _sync_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _no_earlier_login_failures() -> None:
    from django.core.cache import cache

    cache.clear()


def _oig_lines() -> list[str]:
    """40 OIG lines teaching three facts, plus two lines prepare_data must drop."""
    lines = [
        json.dumps(
            {
                "text": render_oig(
                    f"{bg} Case {i}.",
                    [{"role": "human", "text": q}, {"role": "bot", "text": a}],
                )
            }
        )
        for i in range(40)
        for bg, q, a in [FACTS[i % 3]]
    ]
    lines.append(json.dumps({"text": "<human>: no Background here\n<bot>: dropped"}))
    lines.append("{not json")
    return lines


def _login(page: Any, base: str, username: str, next_url: str, lands: str = "") -> None:
    page.goto(f"{base}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests-1")
    page.press("#id_password", "Enter")
    page.wait_for_url(re.compile(lands or re.escape(next_url) + "$"))


@pytest.mark.django_db(transaction=True)
def test_a_researcher_closes_the_loop_in_the_browser(
    live_server: Any, researcher: Any, rater: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from modeling.tiny_model import build_tiny_model

    oig = tmp_path / "facts.jsonl"
    oig.write_text("\n".join(_oig_lines()) + "\n", encoding="utf-8")
    texts = [json.loads(line)["text"] for line in _oig_lines()[:40]]
    base_model = build_tiny_model(tmp_path / "base", texts, seed=0)
    backgrounds = tmp_path / "backgrounds.txt"
    backgrounds.write_text("".join(bg + "\n" for bg, _, _ in FACTS), encoding="utf-8")
    url = live_server.url

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)  # a training POST runs the job (eager Celery)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _login(page, url, "res", "/modeling/")

            # 1. Upload the OIG file; prepare_data runs and the manifest shows what it dropped.
            page.click("#upload-oig")
            page.set_input_files("#id_file", str(oig))
            page.fill("#id_val_fraction", "0.1")
            page.click("#dataset-upload-submit")
            page.wait_for_selector("#manifest-counts")
            assert "42" in page.inner_text("#manifest-counts")  # lines read
            assert "42" in page.inner_text("#manifest-malformed")  # the bad line's number
            dataset = Dataset.objects.get()
            assert dataset.status == RunStatus.SUCCEEDED
            assert dataset.n_train + dataset.n_val == 40

            # 2. Train on it and watch the loss curve.
            page.click("#dataset-train")
            page.fill("#id_base_model", str(base_model))
            for name, value in {
                "max_steps": "60",
                "learning_rate": "0.003",
                "micro_batch_size": "8",
                "gradient_accumulation_steps": "1",
                "lora_r": "16",
                "logging_steps": "10",
                "eval_steps": "30",
                "save_steps": "1000",
                "warmup_steps": "0",
            }.items():
                page.fill(f"#id_{name}", value)
            page.fill(
                "#id_target_modules", "q_proj k_proj v_proj o_proj gate_proj up_proj down_proj"
            )
            page.click("#training-submit")
            page.wait_for_selector("#training-generate")
            assert page.inner_text("#status-text") == "Succeeded"
            assert len((page.get_attribute("#loss-train", "points") or "").split()) >= 6
            training = TrainingRun.objects.get()
            losses = [p["loss"] for p in training.loss_curve if "loss" in p]
            assert training.status == RunStatus.SUCCEEDED and losses[-1] < losses[0]

            # 3. Generate with the adapter.
            page.click("#training-generate")
            page.set_input_files("#id_backgrounds_file", str(backgrounds))
            page.fill("#id_temperature", "0")
            page.fill("#id_max_new_tokens", "30")
            page.click("form.card button[type=submit].primary")
            page.wait_for_selector("#create-study")
            run = GenerationRun.objects.get()
            assert run.status == RunStatus.SUCCEEDED, run.error
            assert run.training_run == training
            parsed = list(run.conversations.filter(parse_ok=True))
            assert len(parsed) == 3, [c.raw_text for c in run.conversations.all()]
            assert {c.question for c in parsed} == {q for _, q, _ in FACTS}

            # 4. A blind study from the run (the run comes preselected).
            page.click("#create-study")
            assert page.is_checked(f'input[name="runs"][value="{run.pk}"]')
            page.fill("#id_title", "Loop study")
            page.fill("#id_slug", "loop")
            page.fill("#id_raters_per_item", "1")
            page.click("form.card button[type=submit].primary")
            page.wait_for_url(re.compile(r"/annotation/loop/$"))
            study = Study.objects.get(slug="loop")
            assert study.items.count() == 3

            # 5. A rater rates every item with the keyboard only.
            rater_page = browser.new_context().new_page()
            rater_page.set_default_timeout(20_000)
            _login(rater_page, url, "rat", "/annotation/loop/rate/", r"/annotation/loop/rate/\d+/$")
            for n, keys in enumerate(("3232", "3222", "2211"), 1):
                assert f"Item {n} of 3" in rater_page.inner_text("#progress-text")
                for key in keys:
                    rater_page.keyboard.press(key)
                with rater_page.expect_navigation():
                    rater_page.keyboard.press("Enter")
            assert re.search(r"/annotation/loop/rate/$", rater_page.url)
            assert "nothing more for you to rate" in rater_page.inner_text("main")
            done = Assignment.objects.filter(item__study=study, status=AssignmentStatus.COMPLETED)
            assert done.count() == 3
            for conv in run.conversations.filter(parse_ok=True):
                assert conv.background not in ("", None)

            # 6. Follow the progress, open the report.
            page.goto(f"{url}/annotation/loop/")
            assert "3" in page.inner_text("main")
            page.click("text=Statistics report")
            page.wait_for_load_state()
            report = page.inner_text("main")
            assert "Wilcoxon" in report
            assert "correctness" in report and "creativity" in report

            # 7. Download the rated dataset: answers rated correctness >= 2 (two of three).
            page.goto(f"{url}/modeling/runs/generation/{run.pk}/")
            page.select_option("#id_export_format", "messages")
            page.fill("#id_export_min_correctness", "2")
            page.select_option("#id_export_target", "answer")
            with page.expect_download() as info:
                page.click("#export-submit")
            body = Path(info.value.path()).read_text(encoding="utf-8")
            rows = [json.loads(line) for line in body.splitlines()]
            assert len(rows) == 2
            assert all(r["messages"][-1]["role"] == "assistant" for r in rows)
            assert errors == []
        finally:
            browser.close()
