"""The assembled report: JSON contract, CSV, text, conclusions and warnings."""

from __future__ import annotations

import csv
import io
import json

import pytest

from stats.plots import diverging_bars, paired_plot
from stats.ratings import RatingsTable, Scale, ratings_from_rows
from stats.report import (
    Distribution,
    ItemPairs,
    ReportSettings,
    build_report,
    to_csv,
    to_json_dict,
    to_text,
)
from tests.stats.conftest import synthetic_rows

COMPARISON_KEYS = {
    "criterion", "n_items", "question_mean", "answer_mean", "median_difference", "statistic",
    "p_value", "p_value_holm", "alternative", "zero_method", "method", "rank_biserial",
    "hodges_lehmann", "hodges_lehmann_ci95", "permutation_p_value",
}  # fmt: skip
AGREEMENT_KEYS = {
    "target", "criterion", "n_items", "n_raters", "krippendorff_alpha_ordinal",
    "krippendorff_alpha_interval", "krippendorff_alpha_nominal",
    "krippendorff_alpha_ordinal_ci95", "fleiss_kappa", "gwet_ac2", "percent_agreement",
}  # fmt: skip


def test_json_keeps_every_contract_key_with_the_right_types(synthetic_table: RatingsTable) -> None:
    data = to_json_dict(build_report(synthetic_table, ReportSettings(n_bootstrap=100)))
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN anywhere
    assert (data["n_ratings"], data["n_items"], data["n_raters"]) == (480, 30, 4)
    assert [c["criterion"] for c in data["comparisons"]] == ["correctness", "creativity"]
    for c in data["comparisons"]:
        assert set(c) >= COMPARISON_KEYS
        assert isinstance(c["n_items"], int) and c["n_items"] == 30
        assert all(isinstance(c[k], float) for k in ("statistic", "p_value", "rank_biserial"))
        assert len(c["hodges_lehmann_ci95"]) == 2
        assert c["alternative"] == "two-sided" and c["zero_method"] == "wilcox"
    assert [(a["target"], a["criterion"]) for a in data["agreement"]] == [
        ("question", "correctness"), ("question", "creativity"),
        ("answer", "correctness"), ("answer", "creativity"),
    ]  # fmt: skip
    for a in data["agreement"]:
        assert set(a) >= AGREEMENT_KEYS
        assert a["n_raters"] == 4
        assert isinstance(a["fleiss_kappa"], float)  # complete design: 4 ratings per item
        lo, hi = a["krippendorff_alpha_ordinal_ci95"]
        assert lo <= a["krippendorff_alpha_ordinal"] <= hi


def test_it_finds_the_planted_difference_and_says_so_in_plain_words(
    synthetic_table: RatingsTable,
) -> None:
    report = build_report(synthetic_table, ReportSettings(n_bootstrap=50))
    first = report.comparisons[0]
    assert first.wilcoxon.p_value < 1e-4
    assert first.p_value_holm == pytest.approx(2 * first.wilcoxon.p_value)
    assert first.wilcoxon.rank_biserial > 0.9
    assert report.conclusions[0].startswith(
        f"Questions were rated more correct than answers: W = {first.wilcoxon.statistic:.1f}, p "
    )
    assert "rank-biserial r = " in report.conclusions[0]
    assert report.conclusions[1].startswith("Questions were rated more creative than answers")


def test_holm_adjusts_across_criteria(synthetic_table: RatingsTable) -> None:
    report = build_report(synthetic_table, ReportSettings(n_bootstrap=0))
    ps = sorted(c.wilcoxon.p_value for c in report.comparisons)
    holm = sorted(c.p_value_holm for c in report.comparisons if c.p_value_holm is not None)
    assert holm == pytest.approx([2 * ps[0], max(2 * ps[0], ps[1])])


def test_no_difference_gives_a_no_difference_conclusion() -> None:
    table = ratings_from_rows(synthetic_rows(shift=0.0, seed=3), Scale(1, 5))
    report = build_report(table, ReportSettings(n_bootstrap=0))
    assert all(c.startswith("No significant difference") for c in report.conclusions)


def test_low_agreement_raises_a_warning_and_a_caution() -> None:
    table = ratings_from_rows(synthetic_rows(noise=3.0, seed=5), Scale(1, 5))
    report = build_report(table, ReportSettings(n_bootstrap=0))
    assert any(w.startswith("Low agreement on question correctness") for w in report.warnings)
    assert "Caution: the raters agreed poorly" in report.conclusions[0]


def test_criteria_rated_for_one_target_only_are_skipped_with_a_warning() -> None:
    rows = [r for r in synthetic_rows() if not (r[3] == "creativity" and r[2] == "answer")]
    table = ratings_from_rows(rows, Scale(1, 5), require_both_targets=False)
    report = build_report(table, ReportSettings(n_bootstrap=0))
    assert [c.criterion for c in report.comparisons] == ["correctness"]
    assert len(report.agreement) == 3
    assert report.warnings[0].startswith("30 of 30 items rated on creativity lack either")


def test_csv_is_tidy_and_carries_the_json_numbers(synthetic_table: RatingsTable) -> None:
    report = build_report(synthetic_table, ReportSettings(n_bootstrap=20))
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert set(rows[0]) == {"section", "target", "criterion", "rater", "statistic", "value"}
    p = next(
        r for r in rows
        if r["section"] == "comparison" and r["criterion"] == "creativity"
        and r["statistic"] == "p_value"
    )  # fmt: skip
    assert float(p["value"]) == report.comparisons[1].wilcoxon.p_value
    lows = [r for r in rows if r["statistic"] == "krippendorff_alpha_ordinal_ci95_low"]
    assert len(lows) == 4


def test_text_report_lists_conclusions_tables_and_methods(synthetic_table: RatingsTable) -> None:
    text = to_text(build_report(synthetic_table, ReportSettings(n_bootstrap=20)))
    assert "Conclusions" in text and "pseudo-replication" in text
    assert "question  correctness" in text


def test_plots_escape_every_name() -> None:
    evil = "<script>alert(1)</script>"
    svg = paired_plot(ItemPairs(evil, (evil, "b"), (3.0, 2.0), (1.0, 2.5)), Scale(1, 5))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    bars = diverging_bars([Distribution("question", evil, (1, 2, 3))], Scale(1, 3), {"1": evil})
    assert "<script>" not in bars and bars.startswith("<svg")


def test_diverging_bars_centre_the_middle_point() -> None:
    bars = diverging_bars([Distribution("question", "c", (0, 10, 0))], Scale(1, 3), width=410)
    # All ratings on the neutral middle: one bar straddling the centre line evenly. Plot area:
    # 410 - 190 (labels) - 20 = 200 px, centre at 290; each side reaches 50%, so the axis
    # spans 50% per side and the whole bar is 200 px wide.
    assert '<rect x="190.00" y="28" width="200.00"' in bars


def test_items_rated_once_give_null_agreement_not_a_crash() -> None:
    rows = [
        ("a", "1", "question", "c", 3), ("a", "1", "answer", "c", 2),
        ("b", "2", "question", "c", 3), ("b", "2", "answer", "c", 3),
        ("c", "3", "question", "c", 1), ("c", "3", "answer", "c", 2),
    ]  # fmt: skip
    report = build_report(ratings_from_rows(rows, Scale(1, 3)), ReportSettings(n_bootstrap=10))
    data = to_json_dict(report)
    json.dumps(data, allow_nan=False)
    agreement = data["agreement"][0]
    assert agreement["krippendorff_alpha_ordinal"] is None
    assert agreement["krippendorff_alpha_ordinal_ci95"] == [None, None]
    assert agreement["fleiss_kappa_reason"] == "every item has a single rating"
    assert data["comparisons"][0]["method"] == "permutation"
    assert "could not be measured" in report.conclusions[0]
    assert "Only 3 items for c" in " ".join(report.warnings)
