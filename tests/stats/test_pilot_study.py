"""The pilot study (real ratings, 41 items, 46 raters, 1-3 scale) analysed end to end."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from stats.ratings import Scale, read_ratings_csv
from stats.report import ReportSettings, build_report
from tests.stats.conftest import PILOT_DIR

RATINGS = PILOT_DIR / "ratings.csv"
pytestmark = pytest.mark.skipif(not RATINGS.exists(), reason="pilot study files not present")


def test_the_pilot_csv_loads_completely() -> None:
    table = read_ratings_csv(RATINGS, Scale(1, 3))
    assert (len(table), len(table.items), len(table.raters)) == (836, 41, 46)
    assert table.criteria == ("correctness", "creativity")


def test_questions_beat_answers_on_both_criteria_in_the_pilot() -> None:
    report = build_report(read_ratings_csv(RATINGS, Scale(1, 3)), ReportSettings(n_bootstrap=200))
    correctness, creativity = report.comparisons
    assert correctness.n_items == creativity.n_items == 41
    assert correctness.question_mean == pytest.approx(2.4350, abs=1e-4)
    assert correctness.answer_mean == pytest.approx(1.9943, abs=1e-4)
    assert correctness.wilcoxon.statistic == 39.5
    assert correctness.wilcoxon.p_value == pytest.approx(5.697e-06, rel=1e-3)
    assert correctness.wilcoxon.rank_biserial == pytest.approx(0.8746, abs=1e-4)
    assert creativity.wilcoxon.statistic == 154.0
    assert creativity.wilcoxon.p_value == pytest.approx(0.002774, abs=1e-6)
    assert creativity.p_value_holm == pytest.approx(creativity.wilcoxon.p_value)
    assert all(c.wilcoxon.method == "asymptotic" for c in report.comparisons)
    assert report.conclusions[0].startswith("Questions were rated more correct than answers")


def test_pilot_raters_agree_poorly_and_the_report_warns() -> None:
    report = build_report(read_ratings_csv(RATINGS, Scale(1, 3)), ReportSettings(n_bootstrap=200))
    alphas = {(a.target, a.criterion): a.result.alpha_ordinal for a in report.agreement}
    assert alphas[("question", "correctness")] == pytest.approx(-0.021, abs=5e-4)
    assert alphas[("answer", "creativity")] == pytest.approx(0.326, abs=5e-4)
    assert all(a.result.fleiss.kappa is None for a in report.agreement)  # 5 or 6 raters per item
    assert sum(w.startswith("Low agreement") for w in report.warnings) == 4


def test_the_command_reproduces_the_numbers_quoted_in_the_docs() -> None:
    out = io.StringIO()
    call_command(
        "stats_report", "--ratings-csv", str(RATINGS), "--scale", "1-3", "--format", "json",
        stdout=out,
    )  # fmt: skip
    data = json.loads(out.getvalue())
    assert (data["n_ratings"], data["n_items"], data["n_raters"]) == (836, 41, 46)
    assert data["comparisons"][0]["hodges_lehmann_ci95"] == pytest.approx([0.3, 0.6])
    assert data["comparisons"][1]["hodges_lehmann_ci95"] == pytest.approx([0.1, 29 / 60], abs=1e-9)
