"""Study planner: vectorised Wilcoxon against scipy, variance components, Noether's n."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy import stats as sps

from stats.paired import wilcoxon_signed_rank
from stats.planning import (
    estimate_variance_components,
    noether_sample_size,
    one_way_random_effects,
    plan_study,
    signed_rank_pvalues,
    simulate_power,
)
from stats.ratings import Scale, ratings_from_rows


def _scipy_pvalue(row: np.ndarray, alternative: str) -> float:
    row = np.round(row, 12)
    nz = row[row != 0]
    if nz.size == 0:
        return 1.0
    exact = row.size <= 50 and nz.size == row.size and np.unique(np.abs(nz)).size == nz.size
    method = "exact" if exact else "asymptotic"
    return float(sps.wilcoxon(row, alternative=alternative, method=method).pvalue)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("n", [8, 30, 70])
def test_vectorised_signed_rank_pvalues_equal_scipy_per_replicate(alternative: str, n: int) -> None:
    rng = np.random.default_rng(n)
    tied = rng.integers(-4, 6, size=(15, n)) / 3  # item means of 3 raters: ties and zeros
    continuous = rng.normal(0.3, 1.0, size=(15, n))  # no ties: exact for n <= 50
    for d in (tied, continuous):
        ours = signed_rank_pvalues(d, alternative)  # type: ignore[arg-type]
        ref = [_scipy_pvalue(row, alternative) for row in d]
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-15)


def test_vectorised_pvalues_match_the_report_test_beyond_its_permutation_range() -> None:
    d = np.random.default_rng(4).integers(-3, 4, size=(10, 40)) / 5
    ours = signed_rank_pvalues(d)
    assert ours == pytest.approx([wilcoxon_signed_rank(row).p_value for row in d], rel=1e-9)


def test_a_replicate_of_zeros_has_p_one() -> None:
    assert signed_rank_pvalues(np.zeros((2, 5))).tolist() == [1.0, 1.0]


def test_one_way_anova_mean_squares_give_scipys_f_statistic() -> None:
    rng = np.random.default_rng(0)
    sizes = [3, 5, 4, 6, 2, 5]
    groups = [rng.normal(g * 0.5, 1.0, size=s) for g, s in enumerate(sizes)]
    codes = np.repeat(np.arange(len(sizes)), sizes)
    su, se, msb, msw, n0 = one_way_random_effects(codes, np.concatenate(groups))
    assert msb / msw == pytest.approx(float(sps.f_oneway(*groups).statistic), rel=1e-12)
    n = sum(sizes)
    assert n0 == pytest.approx((n - sum(s * s for s in sizes) / n) / (len(sizes) - 1))
    assert se == msw
    assert su == pytest.approx(max(0.0, (msb - msw) / n0))


def test_variance_components_recover_the_simulated_item_and_rater_variance() -> None:
    rng = np.random.default_rng(1)
    rows = []
    item_sd, rater_sd = 0.6, 0.9
    for i in range(600):
        u = rng.normal(0.3, item_sd)
        for r in range(int(rng.integers(3, 7))):
            d = u + rng.normal(0, rater_sd)
            # Answer 1000, question 1000 + 100 d: integer scores on a wide scale keep d nearly real.
            rows.append((f"r{r}", f"i{i}", "answer", "c", 1000))
            rows.append((f"r{r}", f"i{i}", "question", "c", round(1000 + 100 * d)))
    vc = estimate_variance_components(ratings_from_rows(rows), "c")
    assert vc.n_items == 600
    assert vc.item_variance / 100**2 == pytest.approx(item_sd**2, rel=0.15)
    assert vc.rater_variance / 100**2 == pytest.approx(rater_sd**2, rel=0.08)
    assert vc.mean_difference / 100 == pytest.approx(0.3, abs=0.06)


def test_variance_components_use_only_raters_who_scored_both_targets() -> None:
    rows = [
        ("r1", "i1", "question", "c", 3), ("r1", "i1", "answer", "c", 2),
        ("r2", "i1", "question", "c", 3), ("r2", "i1", "answer", "c", 3),
        ("r1", "i2", "question", "c", 1), ("r1", "i2", "answer", "c", 2),
        ("r2", "i2", "question", "c", 2), ("r3", "i2", "answer", "c", 3),
    ]  # fmt: skip
    vc = estimate_variance_components(ratings_from_rows(rows, Scale(1, 3)), "c")
    # Differences: i1 -> [1, 0], i2 -> [-1]; MSW = 0.5 / 1, MSB from means 0.5 and -1.
    assert (vc.n_items, vc.n_pairs) == (2, 3)
    assert vc.rater_variance == pytest.approx(0.5)
    grand = 0.0
    msb = (2 * (0.5 - grand) ** 2 + (-1 - grand) ** 2) / 1
    n0 = 3 - 5 / 3
    assert vc.ms_between == pytest.approx(msb)
    assert vc.item_variance == pytest.approx((msb - 0.5) / n0)


def test_noether_sample_size_for_half_a_standard_deviation() -> None:
    # (1.959964 + 0.841621)^2 / (3 (Phi(0.707107) - 0.5)^2) = 7.848879 / (3 * 0.260250^2)
    assert noether_sample_size(0.5, 1.0) == pytest.approx(38.628, abs=1e-3)
    assert noether_sample_size(-0.5, 1.0) == noether_sample_size(0.5, 1.0)
    assert noether_sample_size(0.5, 1.0, alternative="greater") == pytest.approx(
        (1.644854 + 0.841621) ** 2 / (3 * 0.260250**2), rel=1e-5
    )


@pytest.mark.parametrize(("effect", "items"), [(0.5, range(20, 62, 2)), (0.3, range(70, 155, 5))])
def test_simulated_smallest_n_agrees_with_noethers_closed_form(effect: float, items: range) -> None:
    # Normal item means, one rater: sd^2 = 0.6 + 0.4 = 1.0.
    plan = plan_study(effect, 0.6, 0.4, items=items, raters=[1])
    noether = noether_sample_size(effect, 1.0)
    assert plan.noether_items == ((1, pytest.approx(noether)),)
    assert plan.recommended is not None
    assert abs(plan.recommended.n_items - noether) <= 0.12 * noether
    # And the power curve crosses 0.8 there: well below at 75% of Noether's n, above at 125%.
    assert simulate_power(round(0.75 * noether), 1, effect, 0.6, 0.4) < 0.74
    assert simulate_power(round(1.25 * noether), 1, effect, 0.6, 0.4) > 0.85


def test_power_under_the_null_is_the_significance_level() -> None:
    for model in ("normal", "integer"):
        pw = simulate_power(40, 3, 0.0, 0.2, 0.6, n_simulations=4000, model=model)  # type: ignore[arg-type]
        assert abs(pw - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 4000)


def test_plan_recommends_fewest_assignments_and_then_fewer_raters() -> None:
    plan = plan_study(0.3, 0.05, 0.8, items=(20, 30, 40, 60, 80, 120), raters=(1, 2, 3, 4))
    rec = plan.recommended
    assert rec is not None and rec.power >= 0.8
    reaching = [g for g in plan.grid if g.power >= 0.8]
    assert rec.n_assignments == min(g.n_assignments for g in reaching)
    assert rec.n_raters == min(g.n_raters for g in reaching if g.n_assignments == rec.n_assignments)
    assert len(plan.grid) == 24
    assert plan.power(rec.n_items, rec.n_raters) == rec.power
    # More raters per item shrink the rater noise: never need more items.
    smallest = [n for _, n in plan.smallest_items if n is not None]
    assert smallest == sorted(smallest, reverse=True)


def test_plan_is_reproducible_from_its_seed_and_serialises_to_json() -> None:
    a = plan_study(0.2, 0.1, 0.5, items=(50, 100), raters=(2, 4), model="integer", seed=7)
    b = plan_study(0.2, 0.1, 0.5, items=(50, 100), raters=(2, 4), model="integer", seed=7)
    assert a == b
    data = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert data["model"] == "integer" and len(data["grid"]) == 4


def test_plan_without_a_reaching_design_recommends_none() -> None:
    plan = plan_study(0.05, 0.5, 0.5, items=(10, 20), raters=(1, 2), n_simulations=200)
    assert plan.recommended is None
    assert plan.smallest_items == ((1, None), (2, None))


@pytest.mark.slow
def test_the_default_grid_with_a_thousand_simulations_per_design_runs_well_under_30_s() -> None:
    start = time.perf_counter()
    plan = plan_study(0.2, 0.1, 0.5, model="integer")
    elapsed = time.perf_counter() - start
    assert len(plan.grid) == 17 * 8
    assert elapsed < 30
