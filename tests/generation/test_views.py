"""Generation pages: start a run from the browser, watch its progress, cancel it (Celery eager)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from modeling.models import Conversation, GenerationRun, RunStatus, TrainingRun
from tests.generation.conftest import BACKGROUNDS

pytestmark = pytest.mark.django_db

PARAMS = {
    "batch_size": 4,
    "max_new_tokens": 8,
    "min_new_tokens": 0,
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 50,
    "repetition_penalty": 1.1,
    "prompt_repetition_penalty": 1.0,
    "start_with_question": "on",
    "turns": 1,
    "token_budget": 0,
    "no_repeat_ngram_size": 0,
    "num_return_sequences": 1,
    "seed": 3,
    "bucket_window": 2,
    "n_shards": 1,
    "device": "cpu",
}


def _upload() -> SimpleUploadedFile:
    body = "".join(json.dumps({"background": b}, ensure_ascii=False) + "\n" for b in BACKGROUNDS)
    return SimpleUploadedFile("bgs.jsonl", body.encode(), content_type="application/jsonl")


def test_only_researchers_see_the_generation_pages(rater_client: Client, client: Client) -> None:
    url = reverse("modeling:generation_new")
    assert rater_client.get(url).status_code == 403
    assert client.get(url).status_code == 302  # to the login page


def test_the_form_lists_parameters_and_data_files(researcher_client: Client) -> None:
    data_dir = Path(settings.CONVGEN_DATA_DIR)
    (data_dir / "sets").mkdir(parents=True, exist_ok=True)
    (data_dir / "sets" / "bgs.txt").write_text("A passage.\n", encoding="utf-8")
    html = researcher_client.get(reverse("modeling:generation_new")).content.decode()
    for name in ("batch_size", "max_new_tokens", "top_p", "repetition_penalty", "ban_phrases_text"):
        assert f'name="{name}"' in html
    assert "sets/bgs.txt" in html


def test_a_researcher_starts_a_run_and_sees_its_results(
    researcher_client: Client, tiny_model_dir: str
) -> None:
    response = researcher_client.post(
        reverse("modeling:generation_new"),
        PARAMS
        | {
            "name": "first try",
            "base_model": tiny_model_dir,
            "backgrounds_file": _upload(),
            "ban_phrases_text": "Examples include:\n\n",
        },
    )
    run = GenerationRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("modeling:generation_detail", args=[run.pk])
    # Celery is eager in tests, so the run is finished when the redirect comes back.
    assert run.status == RunStatus.SUCCEEDED
    assert run.params["ban_phrases"] == ["Examples include:"]
    assert run.params["seed"] == 3
    assert run.created_by is not None and run.created_by.username == "res"
    assert Path(run.output_path).is_file()
    assert run.conversations.count() == len(BACKGROUNDS)

    status = researcher_client.get(reverse("modeling:generation_status", args=[run.pk])).json()
    assert status["status"] == "succeeded"
    assert (status["n_done"], status["n_total"], status["is_finished"]) == (7, 7, True)

    page = researcher_client.get(reverse("modeling:generation_detail", args=[run.pk]))
    html = page.content.decode()
    assert 'id="diversity"' in html
    assert "distinct-2" in html
    assert BACKGROUNDS[0] in html
    assert "status.json" in html


def test_a_run_from_a_training_run_uses_its_adapter(
    researcher_client: Client, tiny_model_dir: str, tiny_adapter_dir: str
) -> None:
    training = TrainingRun.objects.create(
        base_model=tiny_model_dir, output_dir=tiny_adapter_dir, status=RunStatus.SUCCEEDED
    )
    researcher_client.post(
        reverse("modeling:generation_new"),
        PARAMS | {"training_run": training.pk, "backgrounds_file": _upload()},
    )
    run = GenerationRun.objects.get()
    assert (run.base_model, run.adapter, run.training_run) == (
        tiny_model_dir, tiny_adapter_dir, training,
    )  # fmt: skip
    assert run.status == RunStatus.SUCCEEDED


def test_the_form_rejects_a_broken_backgrounds_file(
    researcher_client: Client, tiny_model_dir: str
) -> None:
    bad = SimpleUploadedFile("bad.jsonl", b'{"background": "ok"}\n{"nope": 1}\n')
    response = researcher_client.post(
        reverse("modeling:generation_new"),
        PARAMS | {"base_model": tiny_model_dir, "backgrounds_file": bad},
    )
    assert response.status_code == 200
    assert "bad.jsonl:2: missing or empty string field" in response.content.decode()
    assert not GenerationRun.objects.exists()


def test_the_form_needs_a_model_and_valid_parameters(researcher_client: Client) -> None:
    response = researcher_client.post(
        reverse("modeling:generation_new"), PARAMS | {"top_p": 2, "backgrounds_file": _upload()}
    )
    html = response.content.decode()
    assert "Choose a training run or enter a base model." in html
    assert not GenerationRun.objects.exists()


def test_conversation_text_is_escaped(researcher_client: Client) -> None:
    run = GenerationRun.objects.create(base_model="m", input_path="i", output_path="o")
    Conversation.objects.create(
        run=run, record_id="r1", background="<script>alert(1)</script>", question="q", answer="a"
    )
    html = researcher_client.get(reverse("modeling:generation_detail", args=[run.pk])).content
    assert b"<script>alert(1)</script>" not in html
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_cancel_is_a_post_that_stops_a_queued_run(researcher_client: Client) -> None:
    run = GenerationRun.objects.create(base_model="m", input_path="i", output_path="o")
    url = reverse("modeling:generation_cancel", args=[run.pk])
    assert researcher_client.get(url).status_code == 405
    response = researcher_client.post(url)
    assert response.status_code == 302
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == (RunStatus.CANCELLED, True)


def test_cancel_needs_a_csrf_token(researcher: object) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)  # type: ignore[arg-type]
    run = GenerationRun.objects.create(base_model="m", input_path="i", output_path="o")
    assert client.post(reverse("modeling:generation_cancel", args=[run.pk])).status_code == 403


def test_a_cancelled_run_resumes_from_the_browser(
    researcher_client: Client, tiny_model_dir: str, backgrounds_jsonl: Path, tmp_path: Path
) -> None:
    from modeling import generate_service

    run = GenerationRun.objects.create(
        base_model=tiny_model_dir,
        input_path=str(backgrounds_jsonl),
        output_path=str(tmp_path / "o.jsonl"),
        params={"batch_size": 3, "max_new_tokens": 8, "bucket_window": 1},
        cancel_requested=True,
    )
    run = generate_service.run_generation(run)
    assert (run.status, run.n_done) == (RunStatus.CANCELLED, 3)
    first_three = sorted(run.conversations.values_list("record_id", flat=True))
    page = researcher_client.get(reverse("modeling:generation_detail", args=[run.pk]))
    assert b"Resume run" in page.content

    researcher_client.post(reverse("modeling:generation_resume", args=[run.pk]))
    run.refresh_from_db()
    assert (run.status, run.n_done, run.params["resume"]) == (RunStatus.SUCCEEDED, 7, True)
    assert run.conversations.count() == 7
    assert set(first_three) <= set(run.conversations.values_list("record_id", flat=True))


def test_the_run_page_shows_repeated_phrases_and_parse_failures(researcher_client: Client) -> None:
    from modeling.diversity import analyze_records

    records: list[dict[str, object]] = [
        {"question": f"What is {w}?", "answer": f"{w} is fine. Examples include: a, b."}
        | {"parse_ok": True}
        for w in ("rain", "snow", "hail", "fog")
    ]
    records.append(
        {"question": "", "answer": "", "parse_ok": False, "parse_error": "no <human>: tag"}
    )
    run = GenerationRun.objects.create(
        base_model="m",
        input_path="i",
        output_path="o",
        status=RunStatus.SUCCEEDED,
        diversity=analyze_records(records).to_dict(),
    )
    html = researcher_client.get(reverse("modeling:generation_detail", args=[run.pk])).content
    text = html.decode()
    assert "Most repeated phrases: Answers" in text
    assert "<code>is fine. examples include: a, b.</code>" in text
    assert "no &lt;human&gt;: tag" in text
    assert "Resume run" not in text and "Cancel run" not in text


def test_an_upload_over_the_limit_is_refused(
    researcher_client: Client, tiny_model_dir: str, settings: object
) -> None:
    settings.CONVGEN_MAX_UPLOAD_BYTES = 10  # type: ignore[attr-defined]
    response = researcher_client.post(
        reverse("modeling:generation_new"),
        PARAMS | {"base_model": tiny_model_dir, "backgrounds_file": _upload()},
    )
    assert "larger than the upload limit" in response.content.decode()
    assert not GenerationRun.objects.exists()
