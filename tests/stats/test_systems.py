"""System comparison on shared Backgrounds against scipy and a published Friedman example."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pytest
from scipy import stats as sps

from stats.paired import hodges_lehmann, holm, paired_comparison
from stats.ratings import Scale, ratings_from_rows
from stats.systems import (
    BlockMeans,
    block_means_from_ratings,
    block_means_from_rows,
    compare_systems,
    friedman_test,
    mean_ci,
)

# Hollander & Wolfe (1973, p. 140; Woodward 1970): times (s) of 22 baseball players rounding
# first base by three methods. R's example(friedman.test): friedman.test(RoundingTimes) gives
# "Friedman chi-squared = 11.143, df = 2, p-value = 0.003805".
ROUNDING_METHODS = ("Round Out", "Narrow Angle", "Wide Angle")
ROUNDING_TIMES = np.array(
    [
        [5.40, 5.50, 5.55], [5.85, 5.70, 5.75], [5.20, 5.60, 5.50], [5.55, 5.50, 5.40],
        [5.90, 5.85, 5.70], [5.45, 5.55, 5.60], [5.40, 5.40, 5.35], [5.45, 5.50, 5.35],
        [5.25, 5.15, 5.00], [5.85, 5.80, 5.70], [5.25, 5.20, 5.10], [5.65, 5.55, 5.45],
        [5.60, 5.35, 5.45], [5.05, 5.00, 4.95], [5.50, 5.50, 5.40], [5.45, 5.55, 5.50],
        [5.55, 5.55, 5.35], [5.45, 5.50, 5.55], [5.50, 5.45, 5.25], [5.65, 5.60, 5.40],
        [5.70, 5.65, 5.55], [6.30, 6.30, 6.25],
    ]
)  # fmt: skip


def _rows_from_matrix(
    m: np.ndarray, systems: tuple[str, ...], target: str = "answer", criterion: str = "c"
) -> list[tuple[str, str, str, str, float]]:
    return [
        (f"bg{i}", systems[j], target, criterion, float(m[i, j]))
        for i in range(m.shape[0])
        for j in range(m.shape[1])
        if not np.isnan(m[i, j])
    ]


def _tied_matrix(n_blocks: int, k: int, seed: int) -> np.ndarray:
    """Item means of 3 raters on a 1-5 scale: multiples of 1/3, with many ties."""
    rng = np.random.default_rng(seed)
    shift = np.linspace(0.0, 0.6, k)
    return np.clip(
        np.round(3 * (rng.uniform(2, 4, (n_blocks, 1)) + shift + rng.normal(0, 0.7, (n_blocks, k))))
        / 3,
        1,
        5,
    )


def test_friedman_reproduces_r_rounding_times_example() -> None:
    res = friedman_test(ROUNDING_TIMES)
    assert res.statistic == pytest.approx(11.143, abs=5e-4)
    assert res.df == 2
    assert res.p_value == pytest.approx(0.003805, abs=5e-7)
    assert res.kendall_w == pytest.approx(11.142857 / (22 * 2), rel=1e-6)
    assert res.kendall_w == pytest.approx(0.2532, abs=5e-5)
    # Mean ranks (ascending times): Round Out slowest, Wide Angle fastest.
    assert res.mean_ranks == pytest.approx((53 / 22, 47 / 22, 32 / 22))
    ref = sps.friedmanchisquare(*ROUNDING_TIMES.T)
    assert res.statistic == pytest.approx(float(ref.statistic), rel=1e-12)
    assert res.p_value == pytest.approx(float(ref.pvalue), rel=1e-12)


@pytest.mark.parametrize(("k", "seed"), [(3, 0), (4, 1), (6, 2)])
def test_friedman_agrees_with_scipy_on_heavily_tied_item_means(k: int, seed: int) -> None:
    m = _tied_matrix(40, k, seed)
    res = friedman_test(m)
    ref = sps.friedmanchisquare(*m.T)
    assert res.statistic == pytest.approx(float(ref.statistic), rel=1e-10)
    assert res.p_value == pytest.approx(float(ref.pvalue), rel=1e-10)
    assert res.tie_correction < 1.0


def test_kendalls_w_without_ties_matches_the_textbook_formula() -> None:
    # W = 12 S / (n^2 (k^3 - k)) with n judges (blocks) ranking k objects, S the sum of
    # squared deviations of the rank sums from their mean (Kendall & Babington Smith 1939).
    rng = np.random.default_rng(3)
    m = rng.normal(size=(12, 5)) + np.arange(5) * 0.3
    n, k = m.shape
    rank_sums = sps.rankdata(m, axis=1).sum(axis=0)
    s = float(np.sum((rank_sums - n * (k + 1) / 2) ** 2))
    assert friedman_test(m).kendall_w == pytest.approx(12 * s / (n**2 * (k**3 - k)), rel=1e-12)


def test_friedman_on_blocks_that_are_all_ties_reports_no_test() -> None:
    res = friedman_test(np.ones((5, 3)))
    assert (res.statistic, res.p_value, res.method) == (0.0, 1.0, "none")
    assert np.isnan(res.kendall_w)


def test_two_systems_are_compared_by_wilcoxon_as_scipy_computes_it() -> None:
    m = _tied_matrix(60, 2, 5)
    report = compare_systems(block_means_from_rows(_rows_from_matrix(m, ("base", "lora"))))
    (cell,) = report.comparisons
    assert (cell.target, cell.criterion, cell.test, cell.friedman) == (
        "answer",
        "c",
        "wilcoxon",
        None,
    )
    (pair,) = cell.pairwise
    # Rounded like stats.paired does, so float noise in thirds does not break true ties.
    d = np.round(m[:, 0] - m[:, 1], 12)
    ref = sps.wilcoxon(d, method="asymptotic")
    assert (pair.system_a, pair.system_b, pair.n_blocks) == ("base", "lora", 60)
    assert pair.wilcoxon.method == "asymptotic"
    assert pair.wilcoxon.statistic == pytest.approx(float(ref.statistic))
    assert pair.wilcoxon.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)
    assert pair.p_value_holm == pair.wilcoxon.p_value
    assert pair.mean_difference == pytest.approx(d.mean())
    assert pair.hodges_lehmann == hodges_lehmann(d)
    nz = d[np.abs(d) > 1e-9]
    ranks = sps.rankdata(np.abs(nz))
    r = (ranks[nz > 0].sum() - ranks[nz < 0].sum()) / ranks.sum()
    assert pair.wilcoxon.rank_biserial == pytest.approx(r)


def test_three_systems_get_friedman_on_complete_blocks_and_holm_pairwise_on_all_shared_blocks() -> (
    None
):
    m = _tied_matrix(50, 3, 7)
    m[:4, 2] = np.nan  # 4 Backgrounds without the third system
    m[4:6, 0] = np.nan  # 2 without the first
    m[6, 1:] = np.nan  # 1 with the first system only
    systems = ("oig", "base", "lora")
    data = block_means_from_rows(_rows_from_matrix(m, systems), systems=systems)
    (cell,) = compare_systems(data).comparisons
    assert cell.systems == systems
    assert cell.test == "friedman"
    cov = cell.coverage
    assert (cov.n_blocks, cov.n_complete, cov.n_incomplete, cov.n_single) == (50, 43, 7, 1)
    assert cov.blocks_per_system == (48, 49, 45)
    assert any("43 complete blocks of 50 (7 incomplete blocks dropped)" in n for n in cell.notes)
    assert any("1 of 50 blocks have one system only" in n for n in cell.notes)
    complete = ~np.isnan(m).any(axis=1)
    ref = sps.friedmanchisquare(*m[complete].T)
    assert cell.friedman is not None
    assert cell.friedman.n_blocks == 43
    assert cell.friedman.statistic == pytest.approx(float(ref.statistic), rel=1e-10)
    assert cell.friedman.p_value == pytest.approx(float(ref.pvalue), rel=1e-10)
    assert [s.mean_rank for s in cell.summaries] == pytest.approx(list(cell.friedman.mean_ranks))
    raw = []
    for pair, (a, b) in zip(cell.pairwise, combinations(range(3), 2), strict=True):
        both = ~np.isnan(m[:, a]) & ~np.isnan(m[:, b])
        assert (pair.system_a, pair.system_b) == (systems[a], systems[b])
        assert pair.n_blocks == int(both.sum())
        ref_w = sps.wilcoxon(np.round(m[both, a] - m[both, b], 12), method="asymptotic")
        assert pair.wilcoxon.p_value == pytest.approx(float(ref_w.pvalue), rel=1e-9)
        raw.append(pair.wilcoxon.p_value)
    assert [p.n_blocks for p in cell.pairwise] == [47, 43, 45]
    assert [p.p_value_holm for p in cell.pairwise] == holm(raw)


def test_system_means_carry_student_t_intervals_over_every_block_of_the_system() -> None:
    m = _tied_matrix(30, 3, 11)
    m[:5, 1] = np.nan
    (cell,) = compare_systems(
        block_means_from_rows(_rows_from_matrix(m, ("a", "b", "c")))
    ).comparisons
    b = cell.summaries[1]
    x = m[5:, 1]
    low, high = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    assert (b.system, b.n_blocks, b.ci_method) == ("b", 25, "t")
    assert (b.mean, b.ci_low, b.ci_high) == pytest.approx((x.mean(), low, high))
    assert mean_ci([3.0])[0] == 3.0 and np.isnan(mean_ci([3.0])[2])


def test_question_vs_answer_is_tested_within_each_system_with_holm_over_criteria() -> None:
    rng = np.random.default_rng(2)
    rows = []
    for i in range(30):
        for system, gain in (("base", 0.0), ("lora", 0.8)):
            for crit in ("correctness", "creativity"):
                rows.append(
                    (
                        f"bg{i}",
                        system,
                        "question",
                        crit,
                        float(np.round(3 + gain + rng.normal(0, 0.6), 1)),
                    )
                )
                rows.append(
                    (f"bg{i}", system, "answer", crit, float(np.round(3 + rng.normal(0, 0.6), 1)))
                )
    report = compare_systems(block_means_from_rows(rows))
    assert [qa.system for qa in report.question_vs_answer] == ["base", "lora"]
    lora = report.question_vs_answer[1]
    q = np.array(
        [r[4] for r in rows if r[1] == "lora" and r[2] == "question" and r[3] == "correctness"]
    )
    a = np.array(
        [r[4] for r in rows if r[1] == "lora" and r[2] == "answer" and r[3] == "correctness"]
    )
    ref = paired_comparison("correctness", q, a)
    assert lora.comparisons[0].wilcoxon == ref.wilcoxon
    assert lora.comparisons[0].hodges_lehmann == ref.hodges_lehmann
    assert [c.p_value_holm for c in lora.comparisons] == holm(
        [c.wilcoxon.p_value for c in lora.comparisons]
    )
    assert len(report.comparisons) == 4  # 2 targets x 2 criteria


def test_block_means_from_ratings_averages_each_item_over_its_raters() -> None:
    rows = [
        ("r1", "i1", "question", "c", 3), ("r2", "i1", "question", "c", 4),
        ("r1", "i1", "answer", "c", 2), ("r2", "i1", "answer", "c", 2),
        ("r1", "i2", "question", "c", 5), ("r1", "i2", "answer", "c", 1),
        ("r3", "i3", "question", "c", 1), ("r3", "i3", "answer", "c", 5),
    ]  # fmt: skip
    table = ratings_from_rows(rows, Scale(1, 5))
    data = block_means_from_ratings(
        table, {"i1": "bg1", "i2": "bg1", "i3": "bg2"}, {"i1": "lora", "i2": "oig", "i3": "lora"}
    )
    assert data.systems == ("lora", "oig")
    m = data.matrix("question", "c")
    assert m.tolist() == [[3.5, 5.0], [1.0, pytest.approx(np.nan, nan_ok=True)]]
    assert sorted(data.n_ratings.tolist()) == [1, 1, 1, 1, 2, 2]


def test_block_means_refuse_unlabelled_items_and_two_items_of_one_system_on_one_block() -> None:
    table = ratings_from_rows(
        [("r1", "i1", "question", "c", 3), ("r1", "i1", "answer", "c", 3),
         ("r1", "i2", "question", "c", 3), ("r1", "i2", "answer", "c", 3)],
        Scale(1, 5),
    )  # fmt: skip
    with pytest.raises(ValueError, match="items without a block or system"):
        block_means_from_ratings(table, {"i1": "bg"}, {"i1": "a"})
    with pytest.raises(ValueError, match="block 'bg' has several question means of system 'a'"):
        block_means_from_ratings(table, {"i1": "bg", "i2": "bg"}, {"i1": "a", "i2": "a"})
    with pytest.raises(ValueError, match="not in the given order"):
        block_means_from_rows([("bg", "x", "answer", "c", 1.0)], systems=("a",))


def test_a_system_without_ratings_in_a_cell_is_named_not_silently_left_out() -> None:
    rows = _rows_from_matrix(_tied_matrix(10, 2, 0), ("a", "b"), criterion="c")
    rows += [("bg0", "c", "answer", "other", 2.0), ("bg1", "a", "answer", "other", 3.0)]
    report = compare_systems(block_means_from_rows(rows))
    cell = next(c for c in report.comparisons if c.criterion == "c")
    assert cell.coverage.systems_without_data == ("c",)
    assert any("from: c" in n for n in cell.notes)
    other = next(c for c in report.comparisons if c.criterion == "other")
    assert other.pairwise == ()
    assert any("share no block" in n for n in other.notes)


def test_report_converts_to_json_with_undefined_numbers_as_null() -> None:
    m = _tied_matrix(8, 3, 4)
    rows = [*_rows_from_matrix(m, ("a", "b", "c")), ("lonely", "a", "question", "c", 2.0)]
    report = compare_systems(block_means_from_rows(rows))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    q_cell = next(c for c in data["comparisons"] if c["target"] == "question")
    assert q_cell["test"] == "none"
    assert q_cell["summaries"][0]["ci_low"] is None
    a_cell = next(c for c in data["comparisons"] if c["target"] == "answer")
    assert a_cell["friedman"]["df"] == 2
    assert a_cell["pairwise"][0]["wilcoxon"]["method"] in {"exact", "permutation", "asymptotic"}


def test_block_means_reject_nan_means() -> None:
    with pytest.raises(ValueError, match="finite"):
        BlockMeans(
            ("b",), ("s",), ("c",), np.zeros(1, np.int64), np.zeros(1, np.int64),
            np.zeros(1, np.int64), np.zeros(1, np.int64), np.array([np.nan]), np.ones(1, np.int64),
        )  # fmt: skip


@pytest.mark.slow
def test_a_million_ratings_over_four_systems_compare_in_seconds() -> None:
    import time

    rng = np.random.default_rng(0)
    n_blocks, systems, raters = 20_834, 4, 3  # x 2 targets x 2 criteria = 1,000,032 ratings
    n_items = n_blocks * systems
    item = np.repeat(np.arange(n_items), raters * 4)
    target = np.tile(np.repeat([0, 1], 2), n_items * raters)
    crit = np.tile([0, 1], n_items * raters * 2)
    rater = np.tile(np.repeat(np.arange(raters), 4), n_items)
    score = np.clip(np.rint(3 + (item % systems) * 0.1 + rng.normal(0, 1, item.size)), 1, 5)
    names = [f"i{i}" for i in range(n_items)]
    from stats.ratings import RatingsTable

    table = RatingsTable(
        raters=tuple(f"r{r}" for r in range(raters)), items=tuple(names), criteria=("a", "b"),
        rater=rater, item=item, target=target, criterion=crit, score=score.astype(np.int64),
        scale=Scale(1, 5),
    )  # fmt: skip
    start = time.perf_counter()
    data = block_means_from_ratings(
        table,
        {n: f"bg{i // systems}" for i, n in enumerate(names)},
        {n: f"s{i % systems}" for i, n in enumerate(names)},
    )
    report = compare_systems(data)
    assert time.perf_counter() - start < 60
    assert len(table) == 1_000_032
    assert report.comparisons[0].coverage.n_complete == n_blocks
    assert report.comparisons[0].friedman is not None
    assert report.comparisons[0].friedman.p_value < 1e-6
