"""Every CSV cell we write is safe to open in a spreadsheet while JSON stays exact, and every
page is sent with a Content-Security-Policy; Swagger UI comes from this site (issue 13)."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from annotation import allocation
from annotation.items import ItemRow
from annotation.models import Study
from annotation.rating_files import export_to_string, import_ratings
from annotation.ratings_format import from_spreadsheet_safe, read_long_csv, spreadsheet_safe
from annotation.studies import StudySpec, create_study
from stats.ratings import ratings_from_rows
from stats.report import build_report, to_csv
from tests.annotation.factories import full_scores, make_rater

FORMULAS = ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "'=1", "''"]


@pytest.mark.parametrize("value", [*FORMULAS, "-1", "+2", "1.5", "plain", "'quoted", ""])
def test_a_protected_cell_reads_back_exactly(value: str) -> None:
    cell = spreadsheet_safe(value)
    assert from_spreadsheet_safe(str(cell)) == value
    if value in FORMULAS:
        assert str(cell).startswith("'")
    if value in ("-1", "+2", "1.5"):
        assert cell == value  # numbers stay numbers


def _formula_study() -> tuple[Study, User]:
    rows = [ItemRow(external_id=f"=cmd|'/C calc'!A{i}", background="B", question="Q",
                    answer="A", source="@evil") for i in range(2)]  # fmt: skip
    study = create_study(StudySpec(title="T", slug="formulas", raters_per_item=1), rows)
    rater = make_rater("=rater")
    assignment = allocation.next_assignment(study, rater)
    assert assignment is not None
    allocation.submit(assignment, full_scores())
    return study, rater


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _unsafe(cells: list[str]) -> list[str]:
    return [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or re.match(r"-[^\d]", c)]


@pytest.mark.django_db
def test_the_study_csv_export_and_export_ratings_neutralise_formulas(
    researcher_client: Client,
) -> None:
    study, _ = _formula_study()
    response: Any = researcher_client.get("/annotation/formulas/export.csv")
    page = b"".join(response.streaming_content)
    out = io.StringIO()
    call_command("export_ratings", "--study", "formulas", "--format", "csv", stdout=out)
    for text in (page.decode(), out.getvalue()):
        cells = _cells(text)
        assert "'=rater" in cells and "'@evil" in cells
        assert _unsafe(cells) == []
    # JSON stays exact.
    records = [json.loads(line) for line in export_to_string(study, "jsonl").splitlines()]
    assert {r["rater"] for r in records} == {"=rater"}
    assert {r["source"] for r in records} == {"@evil"}


@pytest.mark.django_db
def test_an_exported_csv_imports_back_with_the_exact_names() -> None:
    study, _ = _formula_study()
    text = export_to_string(study, "csv")
    read = read_long_csv(text)
    assert read is not None and set(read.columns[0]) == {"=rater"}
    summary = import_ratings(study, io.StringIO(text), "export.csv")
    assert summary.raters_created == 0 and summary.items_created == 0


def test_the_stats_report_csv_neutralises_rater_and_criterion_names() -> None:
    rows = [
        (rater, item, target, "=crit", score)
        for rater, low in (("=r1", 2), ("@r2", 1))
        for item in ("a", "b", "c")
        for target, score in (("question", 3), ("answer", low))
    ]
    report = build_report(ratings_from_rows(rows))
    cells = _cells(to_csv(report))
    assert "'=crit" in cells
    assert _unsafe(cells) == []


@pytest.mark.django_db
def test_every_page_has_a_content_security_policy_and_inline_scripts_carry_its_nonce(
    researcher_client: Client,
) -> None:
    from tests.hardening.site_map import site_paths

    researcher_client.raise_request_exception = False
    paths, _ = site_paths()
    checked = 0
    for site_path in paths:
        response = researcher_client.get(site_path.path)
        if "html" not in response.get("Content-Type", ""):
            continue
        policy = response["Content-Security-Policy"]
        assert "script-src 'self' 'nonce-" in policy and "unsafe-inline' " not in policy
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce is not None
        html = response.content.decode()
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
            assert "src=" in tag or f'nonce="{nonce.group(1)}"' in tag, (site_path.path, tag)
        assert not re.search(r"\son[a-z]+=", html), site_path.path  # no inline handlers
        checked += 1
    assert checked > 10


@pytest.mark.django_db
def test_swagger_ui_is_served_by_the_site(researcher_client: Client) -> None:
    page = researcher_client.get("/api/docs/").content.decode()
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "<script>" not in page  # the setup script is a file of its own
