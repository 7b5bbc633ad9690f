"""Datasets in the browser: upload an OIG file (validated), prepare it (eager Celery), cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from modeling.models import Dataset, RunStatus
from tests.data.conftest import HAND_BUILT_KEPT_LINES, HAND_BUILT_MALFORMED_LINES
from tests.webui.conftest import HAND_BUILT_BYTES, oig_upload

pytestmark = pytest.mark.django_db

OPTIONS = {"val_fraction": "0", "seed": "0", "near_dup_threshold": "0.8", "on_error": "skip"}


def _post(client: Client, upload: object, **extra: str) -> tuple[int, str]:
    response = client.post(reverse("modeling:dataset_new"), OPTIONS | extra | {"file": upload})
    return response.status_code, response.content.decode()


def test_the_upload_page_shows_the_file_and_every_prepare_option(
    researcher_client: Client,
) -> None:
    html = researcher_client.get(reverse("modeling:dataset_new")).content.decode()
    for field_id in (
        "id_name", "id_file", "id_val_fraction", "id_seed", "id_near_dup_threshold",
        "id_on_error", "id_limit", "id_max_tokens", "id_tokenizer",
    ):  # fmt: skip
        assert f'id="{field_id}"' in html
    assert 'id="dataset-upload-submit"' in html
    assert 'enctype="multipart/form-data"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'value="0.05"' in html  # the default validation fraction


@override_settings(CONVGEN_MAX_UPLOAD_BYTES=100)
def test_a_file_over_the_upload_limit_is_refused(researcher_client: Client) -> None:
    status, html = _post(researcher_client, oig_upload())
    assert status == 200
    assert f"The file is {len(HAND_BUILT_BYTES)} bytes; the upload limit is 100 bytes." in html
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"text": "Background: a line cut', "Line 1 is not valid JSON: Unterminated string"),
        (b"\n  \nnot json at all\n", "Line 3 is not valid JSON: Expecting value (column 1)."),
        (b'{"background": "x"}\n', "Line 1 is not a JSON object with a string &quot;text&quot;"),
        (b'[1, 2]\n{"text": "x"}\n', "Line 1 is not a JSON object with a string &quot;text&quot;"),
        (b'{"text": "ok"}\n{"text": "caf\xe9"}\n', "Line 2 is not UTF-8 text (byte 14)."),
        (b"\n\n", "The file has no lines."),
    ],
)
def test_a_file_that_is_not_oig_jsonl_is_refused_naming_the_line(
    researcher_client: Client, body: bytes, message: str
) -> None:
    status, html = _post(researcher_client, oig_upload(body))
    assert status == 200
    assert message in html
    assert not Dataset.objects.exists()
    assert not (Path(settings.CONVGEN_DATA_DIR) / "uploads").exists() or not any(
        (Path(settings.CONVGEN_DATA_DIR) / "uploads").iterdir()
    )


def test_only_jsonl_or_json_files_are_accepted(researcher_client: Client) -> None:
    status, html = _post(researcher_client, oig_upload(name="hand.csv"))
    assert status == 200
    assert "Upload a .jsonl (or .json) file." in html


def test_a_token_limit_needs_a_tokenizer(researcher_client: Client) -> None:
    status, html = _post(researcher_client, oig_upload(), max_tokens="100")
    assert status == 200
    assert "A token limit needs a tokenizer directory." in html


def test_a_good_file_is_stored_prepared_and_summarised(researcher_client: Client) -> None:
    response = researcher_client.post(
        reverse("modeling:dataset_new"), OPTIONS | {"name": "hand built", "file": oig_upload()}
    )
    dataset = Dataset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("modeling:dataset_detail", args=[dataset.pk])
    # Celery is eager in tests: the preparation has finished when the redirect comes back.
    assert dataset.status == RunStatus.SUCCEEDED
    assert dataset.name == "hand built"
    assert dataset.created_by is not None and dataset.created_by.username == "res"
    assert (dataset.n_train, dataset.n_val) == (len(HAND_BUILT_KEPT_LINES), 0)
    counts = dataset.manifest["counts"]
    assert (counts["lines_read"], counts["kept"]) == (16, 5)
    assert counts["dropped"]["missing_text"] == 2
    assert counts["dropped"]["exact_duplicate"] == 2
    assert counts["dropped"]["near_duplicate"] == 1
    assert dataset.manifest["malformed_lines"] == HAND_BUILT_MALFORMED_LINES

    source = Path(dataset.source_path)
    uploads = Path(settings.CONVGEN_DATA_DIR) / "uploads"
    assert source.parent == uploads
    assert source.name.endswith("-hand.jsonl") and len(source.name) == 32 + len("-hand.jsonl")
    assert source.read_bytes() == HAND_BUILT_BYTES
    out = Path(dataset.output_dir)
    assert out.parent == Path(settings.CONVGEN_DATA_DIR) / "datasets"
    assert len((out / "train.jsonl").read_text(encoding="utf-8").splitlines()) == 5

    html = researcher_client.get(response["Location"]).content.decode()
    assert 'id="manifest-counts"' in html
    assert "<th>Lines read</th><td>16</td>" in html
    assert "<td><code>missing_text</code></td><td>2</td>" in html
    assert "<td><code>near_duplicate</code></td><td>1</td>" in html
    assert "3, 13, 15" in html
    assert 'id="dataset-cancel"' not in html  # finished
    assert f'href="{reverse("modeling:training_new")}?dataset={dataset.pk}"' in html

    status = researcher_client.get(reverse("modeling:dataset_status", args=[dataset.pk])).json()
    assert status["status"] == "succeeded"
    assert (status["n_train"], status["n_val"], status["progress"]) == (5, 0, 1.0)
    assert status["is_finished"] is True


def test_the_same_file_twice_never_overwrites_the_first(researcher_client: Client) -> None:
    _post(researcher_client, oig_upload())
    _post(researcher_client, oig_upload(), near_dup_threshold="")
    first, second = Dataset.objects.order_by("pk")
    assert first.source_path != second.source_path
    assert first.output_dir != second.output_dir
    assert Path(first.source_path).read_bytes() == Path(second.source_path).read_bytes()
    # An empty near-duplicate threshold keeps near duplicates.
    assert (first.n_train, second.n_train) == (5, 6)
    assert second.manifest["options"]["near_dup_threshold"] is None


def test_validation_fraction_and_on_error_reach_prepare(researcher_client: Client) -> None:
    _post(researcher_client, oig_upload(), val_fraction="0.5", seed="3", on_error="fail")
    dataset = Dataset.objects.get()
    assert dataset.status == RunStatus.FAILED
    assert "hand.jsonl:3:" in dataset.error  # on_error=fail stops at the first malformed line
    assert dataset.manifest == {}
    html = researcher_client.get(reverse("modeling:dataset_detail", args=[dataset.pk]))
    assert "hand.jsonl:3:" in html.content.decode()

    _post(researcher_client, oig_upload(), val_fraction="0.5", seed="3")
    ok = Dataset.objects.get(status=RunStatus.SUCCEEDED)
    assert ok.manifest["options"]["val_fraction"] == 0.5
    assert ok.manifest["options"]["seed"] == 3
    assert ok.n_train + ok.n_val == 5 and ok.n_val > 0


def test_a_queued_preparation_can_be_cancelled(researcher_client: Client) -> None:
    dataset = Dataset.objects.create(name="waiting", source_path="s", output_dir="o")
    html = researcher_client.get(reverse("modeling:dataset_detail", args=[dataset.pk]))
    assert 'id="dataset-cancel"' in html.content.decode()
    response = researcher_client.post(reverse("modeling:dataset_cancel", args=[dataset.pk]))
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert dataset.status == RunStatus.CANCELLED
    assert dataset.cancel_requested is True
    # A cancelled dataset's task, when it finally runs, does nothing.
    from modeling.tasks import prepare_data_task

    prepare_data_task(dataset.pk, "s", "o", {})
    dataset.refresh_from_db()
    assert dataset.status == RunStatus.CANCELLED
    # GET cannot cancel (POST only, with CSRF in the page).
    assert (
        researcher_client.get(reverse("modeling:dataset_cancel", args=[dataset.pk])).status_code
        == 405
    )


def test_names_in_the_manifest_are_escaped(researcher_client: Client) -> None:
    dataset = Dataset.objects.create(
        name="<script>alert(1)</script>",
        source_path="s",
        output_dir="o",
        status=RunStatus.SUCCEEDED,
        manifest=json.loads(json.dumps({"counts": {"lines_read": 1, "dropped": {}}})),
    )
    html = researcher_client.get(reverse("modeling:dataset_detail", args=[dataset.pk]))
    body = html.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.mark.parametrize("name", ["***.jsonl", "..jsonl"])
def test_a_file_name_with_nothing_usable_is_stored_under_a_default_name(
    researcher_client: Client, name: str
) -> None:
    status, _ = _post(researcher_client, oig_upload(name=name))
    assert status == 302
    dataset = Dataset.objects.get()
    assert dataset.status == RunStatus.SUCCEEDED and dataset.n_train == 5
    assert Path(dataset.source_path).parent == Path(settings.CONVGEN_DATA_DIR) / "uploads"
    assert Path(dataset.source_path).read_bytes() == HAND_BUILT_BYTES
