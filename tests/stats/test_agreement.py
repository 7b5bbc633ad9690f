"""Agreement coefficients against published examples, irrCAC and the krippendorff package."""

from __future__ import annotations

from fractions import Fraction

import krippendorff
import numpy as np
import pytest

from stats.agreement import (
    agreement_summary,
    bootstrap_alpha,
    fleiss_kappa,
    gwet_ac,
    gwet_weights,
    krippendorff_alpha,
    krippendorff_alpha_counts,
    percent_agreement,
    rater_agreement,
    value_counts,
    value_counts_long,
)

nan = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers
# (rows) x 12 units, missing values allowed. Also irrCAC's cac.raw4raters (transposed).
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
)
UNITS_X_RATERS = KRIPPENDORFF_2011.T
SCALE = np.arange(1, 6)

# Wikipedia "Fleiss' kappa" worked example: 10 subjects x 14 raters, 5 categories.
WIKIPEDIA_FLEISS = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)

# Fleiss (1971) Table 1 as raw diagnoses (R irr::diagnoses): 30 patients x 6 psychiatrists,
# categories 1..5 (depression, personality disorder, schizophrenia, neurosis, other).
FLEISS_1971 = np.array(
    [
        [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
    ]
)  # fmt: skip

# Gwet (2014) / irrCAC distrib.6raters: 15 patients, 6 psychiatrists, 5 diagnoses (counts).
GWET_DISTRIB_6RATERS = np.array(
    [
        [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
        [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
        [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1],
    ]
)  # fmt: skip


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_matches_krippendorff_2011_worked_example(level: str, published: float) -> None:
    alpha = krippendorff_alpha(UNITS_X_RATERS, SCALE, level)  # type: ignore[arg-type]
    assert alpha == pytest.approx(published, abs=5e-4)


def test_nominal_alpha_is_exactly_the_hand_computed_fraction() -> None:
    # Rebuild the coincidence matrix with exact fractions, as Krippendorff (2011) does by hand.
    counts = value_counts(UNITS_X_RATERS, SCALE)
    o = [[Fraction(0)] * 5 for _ in range(5)]
    for row in counts.tolist():
        m = sum(row)
        if m < 2:
            continue
        for c in range(5):
            for k in range(5):
                o[c][k] += Fraction(row[c] * row[k] - (row[c] if c == k else 0), m - 1)
    n_c = [sum(r) for r in o]
    n = sum(n_c)
    d_o = sum(o[c][k] for c in range(5) for k in range(5) if c != k)
    d_e = sum(n_c[c] * n_c[k] for c in range(5) for k in range(5) if c != k)
    exact = 1 - (n - 1) * d_o / d_e
    assert krippendorff_alpha_counts(counts, SCALE, "nominal") == pytest.approx(
        float(exact), abs=1e-12
    )


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_alpha_matches_krippendorff_package_on_random_incomplete_matrices(
    level: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    units, raters = rng.integers(5, 60), rng.integers(2, 8)
    truth = rng.integers(1, 6, size=units)[:, None]
    data = np.clip(truth + rng.integers(-1, 2, size=(units, raters)), 1, 5).astype(float)
    data[rng.random(data.shape) < 0.4] = np.nan
    ours = krippendorff_alpha(data, SCALE, level)  # type: ignore[arg-type]
    theirs = krippendorff.alpha(
        reliability_data=data.T,
        level_of_measurement=level,  # type: ignore[arg-type]
        value_domain=SCALE,
    )
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_alpha_is_nan_when_every_rating_is_identical() -> None:
    data = np.full((4, 3), 2.0)
    assert np.isnan(krippendorff_alpha(data, SCALE, "ordinal"))


def test_alpha_ignores_units_with_a_single_rating() -> None:
    with_single = np.vstack([UNITS_X_RATERS, [1, nan, nan, nan]])
    assert krippendorff_alpha(with_single, SCALE, "interval") == pytest.approx(
        krippendorff_alpha(UNITS_X_RATERS, SCALE, "interval"), abs=1e-15
    )


def test_value_counts_rejects_values_off_the_category_list() -> None:
    with pytest.raises(ValueError, match="not one of the categories"):
        value_counts_long([0, 0], [1.0, 7.0], SCALE)


def test_fleiss_kappa_matches_wikipedia_example_and_exact_fractions() -> None:
    res = fleiss_kappa(WIKIPEDIA_FLEISS)
    assert res.kappa == pytest.approx(0.210, abs=5e-4)
    n, m = WIKIPEDIA_FLEISS, 14
    p_bar = sum(Fraction(sum(x * x for x in row) - m, m * (m - 1)) for row in n.tolist()) / 10
    p_c = [Fraction(int(s), 140) for s in n.sum(axis=0)]
    p_e = sum(p * p for p in p_c)
    assert res.kappa == pytest.approx(float((p_bar - p_e) / (1 - p_e)), abs=1e-12)
    assert res.p_observed == pytest.approx(float(p_bar), abs=1e-12)


def test_fleiss_kappa_matches_fleiss_1971_psychiatric_diagnoses() -> None:
    counts = value_counts(FLEISS_1971.astype(float), SCALE)
    assert counts.sum(axis=0).tolist() == [26, 26, 30, 55, 43]
    # Fleiss (1971) reports 0.430; R irr::kappam.fleiss(diagnoses) gives 0.4302445.
    assert fleiss_kappa(counts).kappa == pytest.approx(0.4302445, abs=5e-8)


def test_fleiss_kappa_matches_gwet_distrib_6raters() -> None:
    res = fleiss_kappa(GWET_DISTRIB_6RATERS)
    assert res.kappa == pytest.approx(0.4139265, abs=5e-8)
    assert res.p_expected == pytest.approx(0.2340741, abs=5e-8)


def test_fleiss_kappa_is_null_with_a_reason_for_unequal_rating_counts() -> None:
    res = fleiss_kappa(value_counts(UNITS_X_RATERS, SCALE))
    assert res.kappa is None
    assert res.reason == "items have different numbers of ratings (1 to 4)"


def test_gwet_ac1_and_quadratic_ac2_match_irrcac_raw4raters() -> None:
    counts = value_counts(UNITS_X_RATERS, SCALE)
    ac1 = gwet_ac(counts, SCALE, "identity")
    assert ac1.p_agreement == pytest.approx(0.8181818, abs=5e-8)
    assert ac1.p_chance == pytest.approx(0.1903212, abs=5e-8)
    assert ac1.coefficient == pytest.approx(0.77544, abs=5e-6)
    ac2 = gwet_ac(counts, SCALE, "quadratic")
    assert ac2.p_agreement == pytest.approx(0.9753788, abs=5e-8)
    assert ac2.p_chance == pytest.approx(0.7137044, abs=5e-8)
    assert ac2.coefficient == pytest.approx(0.914, abs=5e-4)


def test_gwet_ac1_and_ac2_match_gwet_2014_distrib_6raters() -> None:
    ac1 = gwet_ac(GWET_DISTRIB_6RATERS, SCALE, "identity")
    assert ac1.coefficient == pytest.approx(0.4448007, abs=5e-8)
    assert ac1.p_agreement == pytest.approx(0.5511111, abs=5e-8)
    assert ac1.p_chance == pytest.approx(0.1914815, abs=5e-8)
    ac2 = gwet_ac(GWET_DISTRIB_6RATERS, SCALE, "quadratic")
    assert ac2.coefficient == pytest.approx(0.4837438, abs=5e-8)
    assert ac2.p_chance == pytest.approx(0.7180556, abs=5e-8)


def test_gwet_weights_match_irrcac_tables_for_three_points() -> None:
    cats = [1, 2, 3]
    assert gwet_weights(cats, "linear")[0].tolist() == [1.0, 0.5, 0.0]
    assert gwet_weights(cats, "quadratic")[0].tolist() == [1.0, 0.75, 0.0]
    assert gwet_weights(cats, "ordinal")[0].tolist() == pytest.approx([1.0, 2 / 3, 0.0])


def test_percent_agreement_matches_irrcac_raw4raters() -> None:
    assert percent_agreement(value_counts(UNITS_X_RATERS, SCALE)) == pytest.approx(9 / 11)


def test_bootstrap_interval_is_reproducible_and_brackets_alpha() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(1, 6, size=200)[:, None]
    data = np.clip(truth + rng.integers(-1, 2, size=(200, 4)), 1, 5).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    counts = value_counts(data, SCALE)
    first = bootstrap_alpha(counts, SCALE, "ordinal", 500, seed=3)
    again = bootstrap_alpha(counts, SCALE, "ordinal", 500, seed=3)
    alpha = krippendorff_alpha_counts(counts, SCALE, "ordinal")
    assert (first.low, first.high) == (again.low, again.high)
    assert first.low < alpha < first.high
    assert first.n_valid == 500


def test_bootstrap_by_pattern_equals_resampling_units_one_by_one() -> None:
    # The multinomial-over-patterns shortcut must give the same distribution as drawing units
    # with replacement: compare the bootstrap mean and spread with a naive loop.
    rng = np.random.default_rng(11)
    truth = rng.integers(1, 4, size=80)[:, None]
    data = np.clip(truth + rng.integers(-1, 2, size=(80, 3)), 1, 3).astype(float)
    cats = np.arange(1, 4)
    counts = value_counts(data, cats)
    naive = []
    draw = np.random.default_rng(5)
    for _ in range(2000):
        pick = counts[draw.integers(0, counts.shape[0], size=counts.shape[0])]
        naive.append(krippendorff_alpha_counts(pick, cats, "ordinal"))
    fast = bootstrap_alpha(counts, cats, "ordinal", 2000, seed=5)
    lo, hi = np.quantile(naive, [0.025, 0.975])
    assert fast.low == pytest.approx(lo, abs=0.03)
    assert fast.high == pytest.approx(hi, abs=0.03)


def test_rater_agreement_flags_a_rater_who_scores_the_opposite_way() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, size=40)
    units, raters, values = [], [], []
    for r in range(5):
        for u, t in enumerate(truth):
            v = 6 - t if r == 4 else int(np.clip(t + rng.integers(-1, 2), 1, 5))
            units.append(u)
            raters.append(r)
            values.append(v)
    res = rater_agreement(units, raters, values, ["a", "b", "c", "d", "contrarian"])
    flagged = [r.rater for r in res if r.outlier]
    assert flagged == ["contrarian"]
    assert res[4].spearman is not None and res[4].spearman < -0.5
    assert all(r.n_ratings == 40 for r in res)


def test_agreement_summary_reports_every_coefficient_for_one_cell() -> None:
    units, raters = np.nonzero(~np.isnan(UNITS_X_RATERS))
    values = UNITS_X_RATERS[units, raters]
    res = agreement_summary(units, raters, values, SCALE, n_bootstrap=200, seed=0)
    assert res.n_items == 12
    assert res.n_raters == 4
    assert res.n_ratings == 41  # 40 pairable values plus the lone rating of unit 12
    assert res.alpha_ordinal == pytest.approx(0.8153875, abs=1e-7)
    assert res.fleiss.kappa is None
    assert res.gwet_ac1.coefficient == pytest.approx(0.77544, abs=5e-6)
    assert res.gwet_ac2.weights == "linear"


def test_a_hundred_point_scale_stays_exact_and_memory_light() -> None:
    # 101 categories: dense per-unit 101 x 101 coincidence matrices would be wasteful; the
    # contributions are kept sparse (a unit with 3 ratings has at most 9 non-zero cells).
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 101, size=600)[:, None]
    data = np.clip(truth + rng.integers(-8, 9, size=(600, 3)), 0, 100).astype(float)
    cats = np.arange(0, 101)
    counts = value_counts(data, cats)
    ours = krippendorff_alpha_counts(counts, cats, "interval")
    theirs = krippendorff.alpha(
        reliability_data=data.T, level_of_measurement="interval", value_domain=cats
    )
    assert ours == pytest.approx(theirs, abs=1e-9)
    boot = bootstrap_alpha(counts, cats, "interval", 40, seed=1)
    assert boot.low < ours < boot.high
    assert boot == bootstrap_alpha(counts, cats, "interval", 40, seed=1)
