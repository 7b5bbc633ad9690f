"""Paired tests against scipy, published examples and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from stats.paired import (
    hodges_lehmann,
    holm,
    paired_comparison,
    sign_flip_test,
    signed_rank_null_cdf,
    walsh_order_statistics,
    wilcoxon_signed_rank,
)

# Darwin's Zea mays data as differences (cross - self fertilised), scipy.stats.wilcoxon docs.
CORN = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], dtype=float)
# Hollander & Wolfe (2014) Table 3.1, Hamilton depression scale before (x) and after (y).
HW_X = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
HW_Y = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])


def test_wilcoxon_reproduces_the_scipy_docs_corn_example_exactly() -> None:
    two = wilcoxon_signed_rank(CORN)
    assert two.statistic == 24.0
    assert two.p_value == pytest.approx(0.041259765625, abs=1e-15)
    assert two.method == "exact"
    greater = wilcoxon_signed_rank(CORN, "greater")
    assert greater.statistic == 96.0
    assert greater.p_value == pytest.approx(0.0206298828125, abs=1e-15)


def test_wilcoxon_reproduces_hollander_wolfe_depression_example() -> None:
    # H&W example 3.1 / R's wilcox.test(x, y, paired = TRUE, alternative = "greater"):
    # V = 40, p-value = 0.01953.
    res = wilcoxon_signed_rank(HW_X - HW_Y, "greater")
    assert res.statistic == 40.0
    assert res.p_value == pytest.approx(5 / 256, abs=1e-15)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
def test_wilcoxon_agrees_with_scipy_for_large_tied_samples(
    alternative: str, zero_method: str
) -> None:
    d = np.random.default_rng(1).integers(-3, 4, size=80) / 2
    ours = wilcoxon_signed_rank(d, alternative, zero_method)  # type: ignore[arg-type]
    ref = sps.wilcoxon(d, zero_method=zero_method, alternative=alternative, method="asymptotic")
    assert ours.method == "asymptotic"
    assert ours.statistic == pytest.approx(float(ref.statistic), abs=1e-9)
    assert ours.p_value == pytest.approx(float(ref.pvalue), abs=1e-12)


def test_wilcoxon_uses_exact_sign_flips_for_small_tied_samples() -> None:
    d = np.array([1.0, 1.0, 2.0, -1.0, 0.0, 3.0, 2.0, 1.0])
    res = wilcoxon_signed_rank(d)
    assert res.method == "permutation"
    # Brute force: all sign patterns of the non-zero |d| with their (tied) ranks.
    nz = d[d != 0]
    ranks = sps.rankdata(np.abs(nz))
    r_plus = ranks[nz > 0].sum()
    total = ranks.sum()
    obs = min(r_plus, total - r_plus)
    stats_ = [
        min(s, total - s)
        for s in (
            sum(r for r, keep in zip(ranks, signs, strict=True) if keep)
            for signs in itertools.product([0, 1], repeat=nz.size)
        )
    ]
    exact = np.mean(np.array(stats_) <= obs + 1e-12)
    assert res.p_value == pytest.approx(exact, abs=1e-12)


def test_wilcoxon_treats_float_noise_in_item_means_as_ties() -> None:
    noisy = np.array([0.4, 2.2 - 1.8, 0.39999999999999997, 1.0, -0.2] * 4)
    assert wilcoxon_signed_rank(noisy).method == "asymptotic"  # ties detected


def test_rank_biserial_matches_kerby_formula_on_pingouin_example() -> None:
    # pingouin.wilcoxon docs: W-val 20.5, RBC -0.378788.
    x = np.array([20, 22, 19, 20, 22, 18, 24, 20, 19, 24, 26, 13])
    y = np.array([38, 37, 33, 29, 14, 12, 20, 22, 17, 25, 26, 16])
    res = wilcoxon_signed_rank(x - y)
    assert res.statistic == 20.5
    assert res.rank_biserial == pytest.approx(-25 / 66, abs=1e-12)
    assert res.n_zero == 1


def test_all_zero_differences_give_p_one_without_calling_the_test() -> None:
    res = wilcoxon_signed_rank(np.zeros(7))
    assert (res.p_value, res.statistic, res.method, res.rank_biserial) == (1.0, 0.0, "none", 0.0)
    hl = hodges_lehmann(np.zeros(7))
    assert (hl.estimate, hl.ci_low, hl.ci_high) == (0.0, 0.0, 0.0)
    assert sign_flip_test(np.zeros(7)).p_value == 1.0


def test_no_differences_is_an_error() -> None:
    with pytest.raises(ValueError, match="no paired differences"):
        wilcoxon_signed_rank([])


def test_signed_rank_null_distribution_matches_scipy() -> None:
    cdf = signed_rank_null_cdf(12)
    from scipy.stats._wilcoxon import WilcoxonDistribution

    dist = WilcoxonDistribution(np.array(12))
    expected = [float(dist.cdf(t)) for t in range(79)]
    assert cdf.tolist() == pytest.approx(expected, abs=1e-15)


def test_hodges_lehmann_reproduces_hollander_wolfe_estimate() -> None:
    # H&W (2014) example 3.2: theta-hat = 0.46 for the depression data.
    hl = hodges_lehmann(HW_X - HW_Y)
    assert hl.estimate == pytest.approx(0.46, abs=1e-12)
    assert hl.method == "exact"
    # Exact interval (C = 6 for n = 9): 6th smallest and 6th largest of the 45 Walsh averages
    # (R: wilcox.test(x, y, paired = TRUE, conf.int = TRUE) gives 0.010 to 0.786).
    assert (hl.ci_low, hl.ci_high) == pytest.approx((0.010, 0.786), abs=1e-12)
    assert hl.achieved_confidence == pytest.approx(1 - 2 * 10 / 512, abs=1e-12)  # 96.1%


def test_hodges_lehmann_interval_inverts_the_exact_scipy_test() -> None:
    # The CI is the set of shifts theta the exact two-sided test does not reject at 5%.
    hl = hodges_lehmann(CORN)
    walsh = np.sort([(a + b) / 2 for a, b in itertools.combinations_with_replacement(CORN, 2)])
    assert hl.estimate == pytest.approx(np.median(walsh), abs=1e-12)
    distinct = np.unique(walsh)
    # Midpoints between distinct Walsh averages: there CORN - t has no zeros and no ties.
    grid = np.concatenate([(distinct[:-1] + distinct[1:]) / 2, [walsh[0] - 1, walsh[-1] + 1]])
    accepted = [t for t in grid if sps.wilcoxon(CORN - t, method="exact").pvalue > 0.05 + 1e-12]
    assert hl.ci_low == pytest.approx(max(w for w in walsh if w < min(accepted)), abs=1e-12)
    assert hl.ci_high == pytest.approx(min(w for w in walsh if w > max(accepted)), abs=1e-12)


def test_hodges_lehmann_uses_the_normal_critical_value_for_large_samples() -> None:
    d = np.random.default_rng(3).normal(0.3, 1.0, size=60)
    hl = hodges_lehmann(d)
    n, m = 60, 60 * 61 // 2
    c = int(np.floor(m / 2 - 1.959963984540054 * np.sqrt(n * (n + 1) * (2 * n + 1) / 24)))
    walsh = np.sort([(a + b) / 2 for a, b in itertools.combinations_with_replacement(d, 2)])
    assert hl.method == "normal"
    assert (hl.ci_low, hl.ci_high) == pytest.approx((walsh[c - 1], walsh[m - c]), abs=1e-11)


@pytest.mark.parametrize("n", [7, 400, 4000])
def test_walsh_order_statistics_match_brute_force(n: int) -> None:
    rng = np.random.default_rng(n)
    d = rng.normal(size=n) if n == 4000 else rng.integers(-4, 5, size=n) / 3
    walsh = np.sort(np.add.outer(d, d)[np.triu_indices(n)] / 2)
    ks = np.unique(rng.integers(1, walsh.size + 1, size=25))
    assert walsh_order_statistics(d, ks) == pytest.approx(walsh[ks - 1], abs=1e-12)


def test_sign_flip_test_is_exact_for_small_samples() -> None:
    res = sign_flip_test(CORN)
    t_obs = CORN.sum()
    sums = [np.dot(s, np.abs(CORN)) for s in itertools.product([-1, 1], repeat=CORN.size)]
    expected = np.mean(np.abs(sums) >= abs(t_obs) - 1e-9)
    assert res.method == "exact"
    assert res.p_value == pytest.approx(expected, abs=1e-15)
    greater = sign_flip_test(CORN, "greater")
    assert greater.p_value == pytest.approx(np.mean(np.array(sums) >= t_obs - 1e-9), abs=1e-15)


def test_sign_flip_monte_carlo_is_seeded_and_close_to_scipy_permutation() -> None:
    d = np.random.default_rng(5).integers(-2, 4, size=60) / 5
    a = sign_flip_test(d, n_resamples=20_000, seed=1)
    b = sign_flip_test(d, n_resamples=20_000, seed=1)
    assert a == b
    assert a.method == "monte-carlo"
    ref = sps.permutation_test(
        (d,), np.sum, permutation_type="samples", n_resamples=20_000, random_state=0
    )
    assert a.p_value == pytest.approx(ref.pvalue, abs=0.01)
    assert a.p_value >= 1 / 20_001


def test_holm_matches_hand_computed_example() -> None:
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_keeps_missing_p_values_and_caps_at_one() -> None:
    assert holm([0.6, None, 0.5]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert holm([]) == []


def test_paired_comparison_summarises_item_means() -> None:
    q = np.array([3.0, 2.5, 2.0, 3.0, 2.2, 2.8, 1.6])
    a = np.array([2.0, 2.5, 1.0, 2.0, 2.0, 2.0, 1.8])
    res = paired_comparison("correctness", q, a)
    assert res.n_items == 7
    assert res.question_mean == pytest.approx(q.mean())
    assert res.median_difference == pytest.approx(0.8)
    assert res.wilcoxon.n_zero == 1
    assert res.p_value_holm is None
