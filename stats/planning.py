"""Study planning: how many items and raters per item a paired comparison needs.

From finished ratings, a one-way random-effects ANOVA on the per-rater differences
question - answer estimates how much items differ (item variance) and how much raters of the
same item differ (rater, i.e. residual, variance). A seeded Monte Carlo simulation then gives
the power of the Wilcoxon signed-rank test on item means, as :mod:`stats.paired` runs it, for
a difference the researcher names, over a grid of items x raters per item; the smallest design
reaching the asked power is recommended. Every replicate of a design is simulated at once and
the test is computed on the whole matrix, so a grid of 100+ designs x 1,000 replicates takes
seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from stats.paired import Alternative, signed_rank_null_cdf
from stats.ratings import RatingsTable
from stats.systems import _jsonable  # NaN/inf -> None, as the system comparison writes them

__all__ = [
    "DEFAULT_ITEMS",
    "DEFAULT_RATERS",
    "DesignPower",
    "StudyPlan",
    "VarianceComponents",
    "estimate_variance_components",
    "noether_sample_size",
    "one_way_random_effects",
    "plan_study",
    "signed_rank_pvalues",
    "simulate_power",
    "variance_components_of",
]

Model = Literal["normal", "integer"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEFAULT_ITEMS = (10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 125, 150, 200, 250, 300, 400, 500)
DEFAULT_RATERS = (1, 2, 3, 4, 5, 6, 8, 10)
_DECIMALS = 12  # as stats.paired: exposes the true ties of item means of integer scores
_EXACT_MAX_N = 50  # as stats.paired: exact null distribution without ties or zeros
_CHUNK = 4_000_000  # simulated values held at once (32 MB of float64)


@dataclass(frozen=True)
class VarianceComponents:
    """Item and rater variance of the per-rater difference d = question - answer.

    Model: d_ir = delta + u_i + e_ir, u_i ~ (0, item_variance), e_ir ~ (0, rater_variance).
    An item mean over k raters then has variance item_variance + rater_variance / k.
    """

    criterion: str
    n_items: int
    n_pairs: int  # (item, rater) pairs that rated both targets
    mean_raters_per_item: float
    mean_difference: float
    item_variance: float
    rater_variance: float
    ms_between: float
    ms_within: float
    n0: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return dict(_jsonable(asdict(self)))


@dataclass(frozen=True)
class DesignPower:
    """Simulated power of one design."""

    n_items: int
    n_raters: int
    n_assignments: int  # items x raters: each assignment rates question and answer
    power: float
    mc_se: float  # Monte Carlo standard error sqrt(p (1 - p) / n_simulations)

    def to_dict(self) -> dict[str, Any]:
        return dict(_jsonable(asdict(self)))


@dataclass(frozen=True)
class StudyPlan:
    """Power over a grid of designs and the smallest one reaching ``target_power``."""

    delta: float
    item_variance: float
    rater_variance: float
    alpha: float
    target_power: float
    alternative: str
    model: str
    n_simulations: int
    seed: int
    items: tuple[int, ...]
    raters: tuple[int, ...]
    grid: tuple[DesignPower, ...]  # items-major: for each n_items, each n_raters
    recommended: DesignPower | None
    smallest_items: tuple[tuple[int, int | None], ...]  # (raters, fewest items reaching it)
    noether_items: tuple[tuple[int, float], ...]  # (raters, Noether's closed-form n)
    method: str

    def power(self, n_items: int, n_raters: int) -> float:
        """Simulated power of a grid design."""
        for d in self.grid:
            if d.n_items == n_items and d.n_raters == n_raters:
                return d.power
        raise KeyError((n_items, n_raters))

    def to_dict(self) -> dict[str, Any]:
        return dict(_jsonable(asdict(self)))


def one_way_random_effects(
    group: ArrayLike, values: ArrayLike
) -> tuple[float, float, float, float, float]:
    """ANOVA (method of moments) estimates of a one-way random-effects model, unbalanced.

    With groups i = 1..I of sizes n_i, N = sum n_i:

        MSB = sum_i n_i (ybar_i - ybar)^2 / (I - 1),
        MSW = sum_i sum_j (y_ij - ybar_i)^2 / (N - I),
        n0  = (N - sum_i n_i^2 / N) / (I - 1),
        sigma_e^2 = MSW,   sigma_u^2 = max(0, (MSB - MSW) / n0)

    (Searle, Casella & McCulloch 1992, Variance Components, sec. 3.5; negative estimates are
    truncated at 0).

    Returns
    -------
    (sigma_u^2, sigma_e^2, MSB, MSW, n0)
        NaN where undefined (one group; no group with two values).
    """
    g = np.asarray(group).ravel()
    y = np.asarray(values, dtype=np.float64).ravel()
    _, codes = np.unique(g, return_inverse=True)
    sizes = np.bincount(codes).astype(np.float64)
    sums = np.bincount(codes, weights=y)
    means = sums / sizes
    n_groups, n = sizes.size, float(y.size)
    grand = float(y.mean()) if y.size else math.nan
    ssb = float(np.sum(sizes * (means - grand) ** 2))
    ssw = float(np.sum((y - means[codes]) ** 2))
    msb = ssb / (n_groups - 1) if n_groups > 1 else math.nan
    msw = ssw / (n - n_groups) if n > n_groups else math.nan
    n0 = (n - float(np.sum(sizes**2)) / n) / (n_groups - 1) if n_groups > 1 else math.nan
    if math.isnan(msb) or math.isnan(msw) or n0 <= 0:
        sigma_u = math.nan
    else:
        sigma_u = max(0.0, (msb - msw) / n0)
    return sigma_u, msw, msb, msw, n0


def estimate_variance_components(table: RatingsTable, criterion: str) -> VarianceComponents:
    """Item and rater variance of question - answer for one criterion, from ratings.

    Each rater's difference d_ir = score(question) - score(answer) of item i is formed where
    the rater scored both targets; :func:`one_way_random_effects` with items as groups then
    gives the item variance (between items, beyond what rater noise explains) and the rater
    variance (within items).

    Parameters
    ----------
    table : RatingsTable
        As :func:`stats.ratings.read_ratings_csv` or ``ratings_from_rows`` return it.
    criterion : str
    """
    if criterion not in table.criteria:
        raise ValueError(f"no ratings of criterion {criterion!r}")
    crit = table.criterion == table.criteria.index(criterion)
    n_raters = len(table.raters)
    key = table.item[crit] * n_raters + table.rater[crit]
    target = table.target[crit]
    score = table.score[crit].astype(np.float64)
    pairs, inverse = np.unique(key, return_inverse=True)
    q = np.full(pairs.size, np.nan)
    a = np.full(pairs.size, np.nan)
    q[inverse[target == 0]] = score[target == 0]
    a[inverse[target == 1]] = score[target == 1]
    both = ~np.isnan(q) & ~np.isnan(a)
    if not both.any():
        raise ValueError(
            f"no rater scored both the question and the answer of an item ({criterion})"
        )
    item = pairs[both] // n_raters
    return variance_components_of(
        criterion,
        item,
        q[both] - a[both],
        "one-way random-effects ANOVA (method of moments) on rater differences "
        "question - answer, items as groups",
    )


def variance_components_of(
    criterion: str, item: np.ndarray, values: np.ndarray, method: str
) -> VarianceComponents:
    """`VarianceComponents` of `values` grouped by `item` (one-way random-effects ANOVA)."""
    sigma_u, sigma_e, msb, msw, n0 = one_way_random_effects(item, values)
    n_items = int(np.unique(item).size)
    return VarianceComponents(
        criterion=criterion,
        n_items=n_items,
        n_pairs=int(values.size),
        mean_raters_per_item=values.size / n_items,
        mean_difference=float(values.mean()),
        item_variance=sigma_u,
        rater_variance=sigma_e,
        ms_between=msb,
        ms_within=msw,
        n0=n0,
        method=method,
    )


def noether_sample_size(
    delta: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.80,
    alternative: Alternative = "two-sided",
) -> float:
    """Noether's (1987) sample size for the Wilcoxon signed-rank test (unrounded).

        n = (z_{1 - alpha/2} + z_{1 - beta})^2 / (3 (p' - 1/2)^2),   p' = P(D + D' > 0),

    and for normal differences D ~ N(delta, sd^2), p' = Phi(sqrt(2) delta / sd). One-sided
    tests use z_{1 - alpha}.

    References
    ----------
    Noether, G. E. (1987). Sample size determination for some common nonparametric tests.
    JASA 82, 645-647.

    Examples
    --------
    delta / sd = 0.5 at alpha 0.05, power 0.8: p' = Phi(0.7071) = 0.7602, n = 38.6 (t test:
    33.4, so the Wilcoxon needs about 3 / pi more).
    """
    if sd <= 0 or delta == 0:
        raise ValueError("need sd > 0 and a non-zero delta")
    z_a = sps.norm.ppf(1.0 - (alpha / 2.0 if alternative == "two-sided" else alpha))
    z_b = sps.norm.ppf(power)
    p_prime = sps.norm.cdf(math.sqrt(2.0) * abs(delta) / sd)
    return float((z_a + z_b) ** 2 / (3.0 * (p_prime - 0.5) ** 2))


def _runs(s: FloatArray) -> tuple[IntArray, IntArray]:
    """First and last index of the tie run of every element of a row-sorted matrix."""
    n = s.shape[1]
    idx = np.broadcast_to(np.arange(n), s.shape)
    new = np.ones(s.shape, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
    last = np.ones(s.shape, dtype=bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, idx, n)[:, ::-1], axis=1)[:, ::-1]
    return start, end


def signed_rank_pvalues(d: ArrayLike, alternative: Alternative = "two-sided") -> FloatArray:
    """Wilcoxon signed-rank p-values of every row of a replicates x n matrix, vectorised.

    Zeros are dropped (``zero_method="wilcox"``), ties get average ranks. Rows without zeros
    or ties and n <= 50 use the exact null distribution (:func:`stats.paired.
    signed_rank_null_cdf`); the others the normal approximation with tie correction and no
    continuity correction,

        z = (T+ - m(m+1)/4) / sqrt(m(m+1)(2m+1)/24 - sum (t^3 - t)/48),

    m the number of non-zero differences, t the sizes of tied groups. This is what
    ``scipy.stats.wilcoxon`` and :func:`stats.paired.wilcoxon_signed_rank` compute, except
    that paired.py enumerates sign flips for n <= 13 with ties, where this uses the normal
    approximation. A row of zeros gets p = 1.
    """
    x = np.round(np.atleast_2d(np.asarray(d, dtype=np.float64)), _DECIMALS) + 0.0
    n = x.shape[1]
    a = np.abs(x)
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    positive = np.take_along_axis(x, order, axis=1) > 0
    n_zero = (s == 0).sum(axis=1)
    start, end = _runs(s)
    # Zeros sort first, so an element's rank among the non-zero values is its rank minus them.
    ranks = (start + end) / 2.0 + 1.0 - n_zero[:, None]
    t_plus = np.where(positive, ranks, 0.0).sum(axis=1)
    t = (end - start + 1).astype(np.float64)
    tie_sum = np.where(s > 0, t * t - 1.0, 0.0).sum(axis=1)  # = sum over groups of t^3 - t
    m = (n - n_zero).astype(np.float64)
    var = m * (m + 1) * (2 * m + 1) / 24.0 - tie_sum / 48.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (t_plus - m * (m + 1) / 4.0) / np.sqrt(var)
    if alternative == "two-sided":
        p = np.minimum(1.0, 2.0 * sps.norm.sf(np.abs(z)))
    elif alternative == "greater":
        p = sps.norm.sf(z)
    else:
        p = sps.norm.cdf(z)
    p = np.where(var > 0, p, 1.0)
    exact = (n_zero == 0) & (tie_sum == 0)
    if n <= _EXACT_MAX_N and exact.any():
        cdf = signed_rank_null_cdf(n)
        top = n * (n + 1) // 2
        tp = np.rint(t_plus[exact]).astype(np.int64)
        lower = cdf[tp]  # P(T+ <= t)
        upper = cdf[top - tp]  # P(T+ >= t), by symmetry
        if alternative == "two-sided":
            p[exact] = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
        elif alternative == "greater":
            p[exact] = upper
        else:
            p[exact] = lower
    return p


def _simulate_item_differences(
    rng: np.random.Generator,
    reps: int,
    n_items: int,
    n_raters: int,
    delta: float,
    item_sd: float,
    rater_variance: float,
    model: Model,
) -> FloatArray:
    if model == "normal":
        sd = math.sqrt(item_sd**2 + rater_variance / n_raters)
        return delta + sd * rng.standard_normal((reps, n_items))
    # Integer differences, as scores on a scale give: round(delta + u_i + e_ir). Rounding adds
    # about 1/12 to the variance (Sheppard), so the latent rater variance is reduced by it.
    latent_sd = math.sqrt(max(rater_variance - 1.0 / 12.0, 0.0))
    u = delta + item_sd * rng.standard_normal((reps, n_items, 1))
    e = latent_sd * rng.standard_normal((reps, n_items, n_raters))
    return np.rint(u + e).mean(axis=2)


def simulate_power(
    n_items: int,
    n_raters: int,
    delta: float,
    item_variance: float,
    rater_variance: float,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    n_simulations: int = 1000,
    seed: int = 0,
    model: Model = "normal",
) -> float:
    """Power of the Wilcoxon signed-rank test on item means, by seeded simulation.

    Each replicate draws n_items item-mean differences: ``model="normal"``:
    N(delta, item_variance + rater_variance / n_raters); ``model="integer"``: each of the
    n_raters per-rater differences is round(delta + u_i + e_ir) (integer scores, so ties and
    zero differences occur as in real ratings), with u_i ~ N(0, item_variance) and
    e_ir ~ N(0, rater_variance - 1/12) and the item mean their average. Power is the share of
    replicates with p <= alpha by :func:`signed_rank_pvalues`.

    The random stream depends only on (seed, n_items) for the normal model and (seed,
    n_items, n_raters) for the integer one, so a design's power does not depend on the grid.
    """
    if n_items < 1 or n_raters < 1 or n_simulations < 1:
        raise ValueError("n_items, n_raters and n_simulations must be positive")
    if item_variance < 0 or rater_variance < 0:
        raise ValueError("variances must be non-negative")
    key = [seed, n_items] if model == "normal" else [seed, n_items, n_raters]
    rng = np.random.default_rng(key)
    per_rep = n_items * (n_raters if model == "integer" else 1)
    chunk = max(1, _CHUNK // per_rep)
    hits = 0
    done = 0
    item_sd = math.sqrt(item_variance)
    while done < n_simulations:
        size = min(chunk, n_simulations - done)
        d = _simulate_item_differences(
            rng, size, n_items, n_raters, delta, item_sd, rater_variance, model
        )
        hits += int((signed_rank_pvalues(d, alternative) <= alpha).sum())
        done += size
    return hits / n_simulations


def plan_study(
    delta: float,
    item_variance: float,
    rater_variance: float,
    items: Sequence[int] = DEFAULT_ITEMS,
    raters: Sequence[int] = DEFAULT_RATERS,
    power: float = 0.80,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    n_simulations: int = 1000,
    seed: int = 0,
    model: Model = "normal",
) -> StudyPlan:
    """Simulated power over items x raters per item, and the smallest adequate design.

    Parameters
    ----------
    delta : float
        The difference to detect, in scale points (question - answer on item means).
    item_variance, rater_variance : float
        From :func:`estimate_variance_components` (or assumed).
    items, raters : sequence of int
        The grid: numbers of items, raters per item.
    power, alpha : float
        Target power (default 0.80) at significance level alpha (default 0.05).
    alternative : {"two-sided", "greater", "less"}
    n_simulations, seed : int
        Replicates per design (default 1,000; Monte Carlo SE of a power near 0.8 is 0.013)
        and the seed.
    model : {"normal", "integer"}
        See :func:`simulate_power`.

    Returns
    -------
    StudyPlan
        ``recommended`` is the design reaching ``power`` with the fewest assignments
        (items x raters), ties broken by fewer raters; None when no grid design reaches it.
        ``noether_items`` gives, per number of raters, Noether's closed-form n for normal
        item means with sd^2 = item_variance + rater_variance / raters: a cross-check.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must lie strictly between 0 and 1")
    items_t = tuple(sorted({int(n) for n in items}))
    raters_t = tuple(sorted({int(k) for k in raters}))
    grid: list[DesignPower] = []
    for n in items_t:
        for k in raters_t:
            pw = simulate_power(
                n, k, delta, item_variance, rater_variance, alpha, alternative,
                n_simulations, seed, model,
            )  # fmt: skip
            se = math.sqrt(pw * (1.0 - pw) / n_simulations)
            grid.append(DesignPower(n, k, n * k, pw, se))
    reaching = [g for g in grid if g.power >= power]
    recommended = min(reaching, key=lambda g: (g.n_assignments, g.n_raters), default=None)
    smallest = tuple(
        (k, min((g.n_items for g in reaching if g.n_raters == k), default=None)) for k in raters_t
    )
    noether: list[tuple[int, float]] = []
    for k in raters_t:
        sd = math.sqrt(item_variance + rater_variance / k)
        noether.append(
            (k, noether_sample_size(delta, sd, alpha, power, alternative) if sd > 0 else math.nan)
        )
    return StudyPlan(
        delta=delta,
        item_variance=item_variance,
        rater_variance=rater_variance,
        alpha=alpha,
        target_power=power,
        alternative=alternative,
        model=model,
        n_simulations=n_simulations,
        seed=seed,
        items=items_t,
        raters=raters_t,
        grid=tuple(grid),
        recommended=recommended,
        smallest_items=smallest,
        noether_items=tuple(noether),
        method=(
            f"Monte Carlo ({n_simulations} replicates per design, seed {seed}, {model} model) "
            "of the Wilcoxon signed-rank test on item means (zeros dropped; exact null "
            "distribution without ties for n <= 50, else normal approximation with tie "
            "correction)"
        ),
    )
