"""Odd input answers 400 or a form error, never 500 (issue 13): deep JSON bodies (also during the
CSRF check), 5,000-digit numbers and deep nesting in JSON-lines uploads, huge report scales;
refused uploads are deleted and errors never show server paths; usernames are validated; a
never-migrated database gets a clear message."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

from annotation.models import Study
from modeling.forms import background_files, check_oig_head
from modeling.oig.parse import LineError, parse_oig_line
from tests.annotation.factories import make_rater, make_study
from tests.generation.test_views import PARAMS

ROOT = Path(__file__).resolve().parents[2]
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 5000


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP, '{"ratings": ' + "[" * 5000 + "]" * 5000 + "}"])
def test_deeply_nested_json_is_a_400_with_a_token(body: str) -> None:
    make_study(slug="deep")
    client = APIClient()
    client.force_authenticate(make_rater("deep-rater"))
    response = client.post("/api/assignments/1/ratings/", body, content_type="application/json")
    assert response.status_code in (400, 404)  # parsed (and refused) before the id is looked up
    response = client.post("/api/assignments/1/skip/", body, content_type="application/json")
    assert response.status_code in (400, 404)


@pytest.mark.django_db
def test_deeply_nested_json_is_a_400_during_the_csrf_check_of_a_session() -> None:
    make_study(slug="deep")
    rater = make_rater("deep-session")
    client = Client(enforce_csrf_checks=True)
    client.force_login(rater)
    token = get_random_string(32)
    client.cookies[django_settings.CSRF_COOKIE_NAME] = token
    response = client.post(
        "/api/assignments/1/ratings/", DEEP, content_type="application/json",
        headers={"X-CSRFToken": token},
    )  # fmt: skip
    assert response.status_code == 400


def test_a_jsonl_dataset_upload_with_a_huge_number_or_deep_nesting_is_named() -> None:
    for first in (f'{{"text": {HUGE_INT}}}', "[" * 100_000):
        problem = check_oig_head([first.encode() + b"\n"])
        assert problem == "Line 1 is not valid JSON: a number or nesting too large."
    for line in (f'{{"text": {HUGE_INT}}}', "[" * 100_000):
        with pytest.raises(LineError):
            parse_oig_line(line)


@pytest.mark.django_db
@pytest.mark.parametrize("first", [f'{{"id": {HUGE_INT}}}', "[" * 100_000])
def test_an_items_file_with_a_huge_number_or_deep_nesting_is_a_form_error(
    researcher_client: Client, first: str
) -> None:
    fields = {"title": "T", "slug": "odd", "scale": "1-3", "raters_per_item": "2",
              "items_per_rater": "0", "lease_minutes": "30"}  # fmt: skip
    upload = SimpleUploadedFile("items.jsonl", (first + "\n").encode())
    response = researcher_client.post("/annotation/new/", {**fields, "items_file": upload})
    assert response.status_code == 200
    assert "line 1: not valid JSON" in response.content.decode()
    assert not Study.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("scale", ["1-999999999", "0-101", "1-" + HUGE_INT])
def test_a_huge_scale_in_the_report_form_is_a_form_error(
    researcher_client: Client, scale: str
) -> None:
    ratings = SimpleUploadedFile("r.csv", b"rater,item,target,criterion,score\nr,a,question,c,1\n")
    response = researcher_client.post(
        "/stats/report/from-csv/", {"ratings": ratings, "scale": scale}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "at most 101 points" in page or "at most 20 characters" in page
    assert "Report: r.csv" not in page


@pytest.mark.django_db
def test_scores_spread_too_far_for_a_scale_are_a_problem_not_a_500(
    researcher_client: Client,
) -> None:
    rows = [
        f"r{r},a,{t},c,{s}" for r, s in ((1, 1), (2, 999999999)) for t in ("question", "answer")
    ]
    body = ("rater,item,target,criterion,score\n" + "\n".join(rows) + "\n").encode()
    response = researcher_client.post(
        "/stats/report/from-csv/", {"ratings": SimpleUploadedFile("r.csv", body)}
    )
    assert response.status_code == 400
    assert "at most 101 points" in response.content.decode()


def test_stats_report_refuses_a_huge_scale(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("rater,item,target,criterion,score\nr,a,question,c,1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="at most 101 points"):
        call_command("stats_report", "--ratings-csv", str(path), "--scale", "1-999999999")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content",
    [b'{"background": "ok"}\n{"nope": 1}\n', f'{{"background": {HUGE_INT}}}\n'.encode()],
)
def test_a_refused_backgrounds_upload_is_deleted_and_no_server_path_is_shown(
    researcher_client: Client, tiny_model_dir: str, settings: Any, content: bytes
) -> None:
    response = researcher_client.post(
        "/modeling/runs/generation/new/",
        PARAMS | {"base_model": tiny_model_dir, "backgrounds_file": SimpleUploadedFile(
            "bad.jsonl", content)},
    )  # fmt: skip
    assert response.status_code == 200
    page = response.content.decode()
    assert "bad.jsonl" in page
    assert str(settings.CONVGEN_DATA_DIR) not in page
    assert str(Path(settings.CONVGEN_DATA_DIR).resolve()) not in page
    uploads = Path(settings.CONVGEN_DATA_DIR) / "uploads" / "backgrounds"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert background_files() == []


@pytest.mark.django_db
def test_import_ratings_create_raters_refuses_names_django_would_refuse(tmp_path: Path) -> None:
    make_study(slug="pilot")
    path = tmp_path / "r.csv"
    bad = ["a b", "x" * 151, "ana/../../etc", "<script>"]
    lines = ["rater,item,target,criterion,score"]
    lines += [f'"{name}",it-0,question,correctness,2' for name in bad]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CommandError) as info:
        call_command(
            "import_ratings", str(path), "--study", "pilot", "--create-raters",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    message = str(info.value)
    for line in range(2, 2 + len(bad)):
        assert f"line {line}: rater: " in message and "cannot be a username" in message
    from django.contrib.auth.models import User

    assert not User.objects.filter(username__in=bad).exists()


SAMPLE = str(ROOT / "modeling" / "sample_data" / "oig_sample.jsonl")


@pytest.mark.parametrize("command", [["prepare_data", SAMPLE], ["export_ratings", "--study", "x"],
                                     ["stats_report", "--study", "x"]])  # fmt: skip
def test_commands_on_a_never_migrated_database_say_to_run_migrate(
    tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "convgen_site.settings", "DEBUG": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
           "CONVGEN_VAR_DIR": str(tmp_path)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode != 0
    assert "manage.py migrate" in result.stderr
