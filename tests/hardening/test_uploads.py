"""Uploads: every upload form on the site refuses bodies over the limit before storing anything;
the existing ones refuse a file just over CONVGEN_MAX_UPLOAD_BYTES, and broken files, politely.

The upload forms are found by reading every page of the site, so a page added later is covered.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils.crypto import get_random_string

from annotation.models import Study
from convgen_site.uploads import UploadLimitHandler, upload_body_limit
from tests.hardening.site_map import UploadForm, site_paths, upload_forms

# Upload forms whose exact limit and validation messages are tested where the page is built.
TESTED_ELSEWHERE = {
    "/modeling/runs/generation/new/": "tests/generation/test_views.py (upload over the limit)",
    "/modeling/datasets/new/": "tests/webui/test_datasets.py (limit and broken OIG files)",
}


def _all_rows() -> dict[str, int]:
    return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _discover(client: Client) -> tuple[list[UploadForm], list[tuple[str, int]]]:
    """Upload forms on every page a researcher can GET, and any page that fails with a 5xx."""
    paths, _ = site_paths()
    forms: dict[tuple[str, str], UploadForm] = {}
    crashed = []
    for site_path in paths:
        response = client.get(site_path.path)
        if response.status_code >= 500:
            crashed.append((site_path.path, response.status_code))
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            for form in upload_forms(response.content.decode(), site_path.path):
                forms.setdefault((form.page, form.action), form)
    return list(forms.values()), crashed


@pytest.fixture
def discovered(researcher_client: Client) -> list[UploadForm]:
    researcher_client.raise_request_exception = False
    forms, crashed = _discover(researcher_client)
    assert crashed == []  # no page of the site fails on a plain GET
    return forms


@pytest.mark.django_db
def test_every_upload_form_is_multipart_and_known(discovered: list[UploadForm]) -> None:
    pages = {form.page for form in discovered}
    assert {"/annotation/new/", "/stats/report/from-csv/", "/modeling/runs/generation/new/"} <= (
        pages
    )
    assert all(form.enctype == "multipart/form-data" for form in discovered)
    # A new upload page needs its exact-limit test: here (UPLOAD_CASES) or beside the page.
    assert pages - set(UPLOAD_CASES) - set(TESTED_ELSEWHERE) == set()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["researcher", "anonymous"])
def test_every_upload_form_refuses_a_body_over_the_limit_and_stores_nothing(
    discovered: list[UploadForm], researcher: User, settings: Any, who: str
) -> None:
    settings.CONVGEN_MAX_UPLOAD_BYTES = 2000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert upload_body_limit() == 3000
    # As a browser sends it (CSRF token and all). Anonymous callers too: the CSRF check reads
    # the body before any login check could turn them away.
    token = get_random_string(32)
    client = Client(enforce_csrf_checks=True)
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    if who == "researcher":
        client.force_login(researcher)
    roots = [Path(settings.CONVGEN_DATA_DIR), Path(settings.CONVGEN_RUNS_DIR)]
    rows, files = _all_rows(), set().union(*(_all_files(r) for r in roots))
    pages = set()
    for form in discovered:
        data: dict[str, Any] = {"csrfmiddlewaretoken": token}
        data |= {
            name: SimpleUploadedFile(f"{name}.jsonl", b"x" * 3001) for name in form.file_fields
        }
        response = client.post(form.action, data)
        assert response.status_code == 400, (form, response.status_code)
        assert b"Bad Request (400)" in response.content  # the handler's refusal, not the form's
        pages.add(form.page)
    assert "/annotation/new/" in pages and "/stats/report/from-csv/" in pages
    assert _all_rows() == rows
    assert set().union(*(_all_files(r) for r in roots)) == files


def test_the_handler_counts_the_bytes_it_receives_whatever_the_header_says(
    settings: Any,
) -> None:
    settings.CONVGEN_MAX_UPLOAD_BYTES = 100
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 0
    handler = UploadLimitHandler()
    with pytest.raises(RequestDataTooBig):
        handler.handle_raw_input(None, {}, 101, b"b")
    handler.handle_raw_input(None, {}, 50, b"b")  # a header that lies about the size
    assert handler.receive_data_chunk(b"x" * 60, 0) == b"x" * 60
    with pytest.raises(RequestDataTooBig):
        handler.receive_data_chunk(b"x" * 41, 60)


# ------------------------------------------------------------ the exact limit, per upload form


def _items_file(n: int = 2) -> bytes:
    lines = [
        f'{{"id": "i{i}", "background": "B{i}", "question": "Q", "answer": "A"}}' for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def _ratings_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rater", "item", "target", "criterion", "score"])
    for rater in ("r1", "r2"):
        for item in ("a", "b", "c"):
            for target in ("question", "answer"):
                writer.writerow(
                    [rater, item, target, "correctness", 2 if target == "answer" else 3]
                )
    return out.getvalue().encode()


STUDY_FIELDS = {"title": "T", "slug": "uploaded", "scale": "1-3", "raters_per_item": "2",
                "items_per_rater": "0", "lease_minutes": "30"}  # fmt: skip


@dataclass(frozen=True)
class UploadCase:
    field: str
    fields: dict[str, str]
    good: bytes
    too_big: str  # the message for a file over the limit
    broken: list[tuple[bytes, str]]  # (content, message)
    accepted: Callable[[Any], bool]
    created: Callable[[], int] = lambda: 0


UPLOAD_CASES: dict[str, UploadCase] = {
    "/annotation/new/": UploadCase(
        field="items_file",
        fields=STUDY_FIELDS,
        good=_items_file(),
        too_big="The items file is too large.",
        broken=[
            (b"\xff\xfe\x00\x01 not text", "The items file is not UTF-8 text."),
            (b'{"id": "a", "background": "B"\n', "line 1: not valid JSON"),
            (b'{"id": "a", "question": "Q"}\n', "line 1: background: empty"),
        ],
        accepted=lambda r: r.status_code == 302 and r["Location"] == "/annotation/uploaded/",
        created=lambda: Study.objects.count(),
    ),
    "/stats/report/from-csv/": UploadCase(
        field="ratings",
        fields={"scale": "1-3"},
        good=_ratings_csv(),
        too_big="The file is larger than the upload limit (",
        broken=[
            (b"\xff\xfe\x00\x01", "is not UTF-8 text."),
            (b"rater,item\nr1,a\n", "ratings.csv: "),
        ],
        accepted=lambda r: r.status_code == 200 and b"Report: ratings.csv" in r.content,
    ),
}


def _post(client: Client, page: str, case: UploadCase, content: bytes) -> Any:
    name = "ratings.csv" if case.field == "ratings" else "items.jsonl"
    return client.post(page, {**case.fields, case.field: SimpleUploadedFile(name, content)})


@pytest.mark.django_db
@pytest.mark.parametrize("page", sorted(UPLOAD_CASES))
def test_a_file_one_byte_over_the_limit_is_refused_and_one_at_it_accepted(
    researcher_client: Client, settings: Any, page: str
) -> None:
    case = UPLOAD_CASES[page]
    settings.CONVGEN_MAX_UPLOAD_BYTES = len(case.good) - 1
    response = _post(researcher_client, page, case, case.good)
    assert response.status_code in (200, 400)
    assert case.too_big in response.content.decode()
    assert case.created() == 0
    settings.CONVGEN_MAX_UPLOAD_BYTES = len(case.good)
    response = _post(researcher_client, page, case, case.good)
    assert case.accepted(response), response.content.decode()[:2000]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("page", "index"),
    [(page, i) for page, case in UPLOAD_CASES.items() for i in range(len(case.broken))],
)
def test_a_broken_file_is_refused_with_a_reason_and_nothing_is_stored(
    researcher_client: Client, page: str, index: int
) -> None:
    case = UPLOAD_CASES[page]
    content, message = case.broken[index]
    rows = _all_rows()
    response = _post(researcher_client, page, case, content)
    assert response.status_code in (200, 400)
    assert message in response.content.decode()
    assert not case.accepted(response)
    assert _all_rows() == rows
