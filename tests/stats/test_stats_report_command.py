"""``manage.py stats_report`` from a CSV and from a study; bad input is a CommandError."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.stats.conftest import synthetic_rows, write_csv


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("stats_report", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_prints_a_text_report_for_a_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", synthetic_rows())
    text = _run("--ratings-csv", str(path), "--scale", "1-5", "--bootstrap", "50")
    assert "Questions were rated more correct than answers" in text
    assert "Agreement (individual ratings)" in text


def test_it_writes_json_to_a_file_with_the_chosen_alternative(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", synthetic_rows())
    out = tmp_path / "report.json"
    _run(
        "--ratings-csv", str(path), "--format", "json", "--output", str(out),
        "--alternative", "greater", "--bootstrap", "50",
    )  # fmt: skip
    data = json.loads(out.read_text())
    assert data["n_ratings"] == 480
    assert {c["alternative"] for c in data["comparisons"]} == {"greater"}
    assert data["scale"] == [1, 5]  # inferred from the scores


def test_it_writes_a_standalone_html_page(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", synthetic_rows())
    html = _run("--ratings-csv", str(path), "--format", "html", "--bootstrap", "20")
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") == 3  # distributions + one paired plot per criterion
    assert "Can we trust the raters?" in html


def test_csv_format_is_tidy(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", synthetic_rows())
    text = _run("--ratings-csv", str(path), "--format", "csv", "--bootstrap", "0")
    assert text.splitlines()[0] == "section,target,criterion,rater,statistic,value"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rater,item,score\nr,1,3\n", "line 1: missing column(s) target, criterion"),
        ("rater,item,target,criterion,score\nr,1,question,c,high\n", "line 2: score 'high'"),
        ("rater,item,target,criterion,score\nr,1,question,c,9\n", "score 9 is outside the scale"),
        ("rater,item,target,criterion,score\nr,1,question,c,3\n", "item '1' has question ratings"),
        (
            "rater,item,target,criterion,score\nr,1,question,c,3\nr,1,answer,c,3\nr,1,answer,c,2\n",
            "line 4: duplicate rating by rater 'r' of item '1', answer, 'c' (first on line 3)",
        ),
    ],
)
def test_bad_input_is_a_clear_command_error(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(CommandError) as err:
        _run("--ratings-csv", str(path), "--scale", "1-5")
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_bad_scale_and_missing_file_are_command_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--scale: scale '5-1'"):
        _run("--ratings-csv", str(tmp_path / "x.csv"), "--scale", "5-1")
    with pytest.raises(CommandError, match="file not found"):
        _run("--ratings-csv", str(tmp_path / "missing.csv"))


def test_it_needs_exactly_one_source() -> None:
    with pytest.raises(CommandError):
        _run("--format", "json")


@pytest.mark.django_db
def test_an_unknown_study_is_a_command_error() -> None:
    pytest.importorskip("annotation.models")
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        _run("--study", "nope")


def test_it_reports_a_study_from_the_database(make_study: Callable[..., object]) -> None:
    attention = [("rater0", "check", t, "correctness", 1) for t in ("question", "answer")]
    make_study(synthetic_rows(n_items=12), slug="s1", attention_rows=attention)
    data = json.loads(_run("--study", "s1", "--format", "json", "--bootstrap", "20"))
    assert data["n_items"] == 12  # the attention check is left out
    assert data["n_ratings"] == 12 * 4 * 4
    assert data["source"] == "study s1"
    assert data["comparisons"][0]["p_value"] < 0.01


def test_the_study_report_equals_the_csv_report(
    make_study: Callable[..., object], tmp_path: Path
) -> None:
    rows = synthetic_rows(n_items=10, seed=9)
    make_study(rows, slug="same")
    from_db = json.loads(_run("--study", "same", "--format", "json", "--bootstrap", "30"))
    path = write_csv(tmp_path / "same.csv", rows)
    from_csv = json.loads(
        _run("--ratings-csv", str(path), "--scale", "1-5", "--format", "json", "--bootstrap", "30")
    )
    assert from_db["comparisons"] == from_csv["comparisons"]
    assert from_db["agreement"] == from_csv["agreement"]


def test_unfinished_assignments_do_not_count(make_study: Callable[..., object]) -> None:
    make_study(synthetic_rows(n_items=5), slug="wip", status="leased")
    with pytest.raises(CommandError, match="study wip: no ratings"):
        _run("--study", "wip")


def test_scale_cannot_be_given_for_a_study(make_study: Callable[..., object]) -> None:
    make_study(synthetic_rows(n_items=3), slug="s2")
    with pytest.raises(CommandError, match="--scale is for --ratings-csv"):
        _run("--study", "s2", "--scale", "1-5")
