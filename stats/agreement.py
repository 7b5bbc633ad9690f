"""Inter-rater agreement: Krippendorff's alpha, Fleiss' kappa, Gwet's AC1/AC2, percent agreement.

Every coefficient here is computed from a *value-count matrix* ``counts`` of shape
(units, categories): ``counts[u, c]`` is how many raters put unit ``u`` in category ``c``.
Missing ratings simply do not appear in the counts, so incomplete designs (each rater sees a
subset of the items) need no special handling. Build it with :func:`value_counts` from an
items x raters matrix with NaN for missing ratings, or with :func:`value_counts_long` from
long-format arrays.

(About 600 lines: one family of coefficients sharing the value-count matrix and its bootstrap;
split, each coefficient would import the same private helpers back.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy import stats as sps

__all__ = [
    "AgreementResult",
    "AlphaBootstrap",
    "FleissResult",
    "GwetResult",
    "RaterAgreement",
    "agreement_summary",
    "bootstrap_alpha",
    "fleiss_kappa",
    "gwet_ac",
    "gwet_weights",
    "krippendorff_alpha",
    "krippendorff_alpha_counts",
    "percent_agreement",
    "rater_agreement",
    "value_counts",
    "value_counts_long",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
WeightName = Literal["identity", "linear", "quadratic", "ordinal"]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class AlphaBootstrap:
    """Percentile bootstrap interval for Krippendorff's alpha (units resampled)."""

    low: float
    high: float
    confidence: float
    n_resamples: int
    n_valid: int
    seed: int


@dataclass(frozen=True)
class FleissResult:
    """Fleiss' kappa, or ``kappa=None`` with the reason it is undefined."""

    kappa: float | None
    p_observed: float | None
    p_expected: float | None
    reason: str | None


@dataclass(frozen=True)
class GwetResult:
    """Gwet's AC1 (identity weights) or AC2 (other weights) with its parts."""

    coefficient: float
    p_agreement: float
    p_chance: float
    weights: str


@dataclass(frozen=True)
class RaterAgreement:
    """One rater against the leave-one-out consensus (mean of the other raters)."""

    rater: str
    n_ratings: int
    mean_absolute_deviation: float | None
    mean_difference: float | None
    spearman: float | None
    outlier: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AgreementResult:
    """All agreement coefficients for one (target, criterion) cell."""

    n_items: int
    n_raters: int
    n_ratings: int
    alpha_nominal: float
    alpha_ordinal: float
    alpha_interval: float
    alpha_ordinal_ci: AlphaBootstrap
    fleiss: FleissResult
    gwet_ac1: GwetResult
    gwet_ac2: GwetResult
    percent_agreement: float


# --------------------------------------------------------------------------- counts


def value_counts(matrix: ArrayLike, categories: ArrayLike) -> NDArray[np.int64]:
    """Units x categories counts from a units x raters matrix with NaN for missing ratings.

    Parameters
    ----------
    matrix : array_like, shape (n_units, n_raters)
        Ratings; NaN marks a missing rating.
    categories : array_like, shape (n_categories,)
        The possible values, ascending (e.g. every point of the rating scale).

    Returns
    -------
    ndarray of int64, shape (n_units, n_categories)
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError("matrix must be 2-D (units x raters)")
    units, _ = np.nonzero(~np.isnan(m))
    values = m[~np.isnan(m)]
    return value_counts_long(units, values, categories, n_units=m.shape[0])


def value_counts_long(
    units: ArrayLike, values: ArrayLike, categories: ArrayLike, n_units: int | None = None
) -> NDArray[np.int64]:
    """Units x categories counts from long-format arrays (one entry per rating).

    Parameters
    ----------
    units : array_like of int
        Unit (item) index of each rating, ``0 <= unit < n_units``.
    values : array_like
        The rating; each must be one of ``categories``.
    categories : array_like
        The possible values, ascending.
    n_units : int, optional
        Number of units; defaults to ``max(units) + 1``.
    """
    u = np.asarray(units, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    cats = np.asarray(categories, dtype=np.float64)
    if cats.ndim != 1 or cats.size == 0 or np.any(np.diff(cats) <= 0):
        raise ValueError("categories must be a non-empty ascending 1-D array")
    pos = np.searchsorted(cats, v)
    pos_clipped = np.minimum(pos, cats.size - 1)
    if v.size and not np.array_equal(cats[pos_clipped], v):
        bad = v[cats[pos_clipped] != v][0]
        raise ValueError(f"value {bad!r} is not one of the categories {cats.tolist()}")
    n = int(u.max()) + 1 if n_units is None and u.size else int(n_units or 0)
    flat = np.bincount(u * cats.size + pos_clipped, minlength=n * cats.size)
    return flat.reshape(n, cats.size).astype(np.int64)


# --------------------------------------------------------------------------- Krippendorff


def _delta2(level: Level, values: FloatArray, marginals: FloatArray) -> FloatArray:
    """Squared difference function delta^2(c, k); ``marginals`` may be batched (..., C)."""
    v = values
    if level == "nominal":
        d = 1.0 - np.eye(v.size)
        return np.broadcast_to(d, (*marginals.shape[:-1], v.size, v.size))
    if level == "interval":
        d = (v[:, None] - v[None, :]) ** 2
        return np.broadcast_to(d, (*marginals.shape[:-1], v.size, v.size))
    if level == "ratio":
        with np.errstate(invalid="ignore", divide="ignore"):
            d = ((v[:, None] - v[None, :]) / (v[:, None] + v[None, :])) ** 2
        d = np.nan_to_num(d)
        return np.broadcast_to(d, (*marginals.shape[:-1], v.size, v.size))
    if level == "ordinal":
        # Krippendorff (2011): delta_ck = (sum_{g=c}^{k} n_g - (n_c + n_k) / 2)^2, built from
        # the cumulative marginals so it works on a whole batch of bootstrap resamples at once.
        cum = np.cumsum(marginals, axis=-1)
        before = cum - marginals  # sum_{g<c} n_g
        hi = cum[..., None, :]  # sum_{g<=k}
        lo = before[..., :, None]  # sum_{g<c}
        span = hi - lo - (marginals[..., :, None] + marginals[..., None, :]) / 2.0
        d = span**2
        # Symmetrise: the formula above is meant for c <= k.
        upper = np.triu(np.ones((v.size, v.size), dtype=bool))
        return np.where(upper, d, np.swapaxes(d, -1, -2))
    raise ValueError(f"unknown level of measurement {level!r}")


def _unit_pairs(counts: FloatArray) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]:
    """Non-zero entries of every unit's coincidence contribution, as (unit, cell, value).

    o_u[c, k] = (n_uc * n_uk - [c == k] * n_uc) / (m_u - 1) (Krippendorff 2011). A unit with r
    ratings has at most r distinct values, so o_u has at most r^2 non-zero cells whatever the
    number of categories C; cell = c * C + k. Every unit must have m_u >= 2.
    """
    n_units, n_cat = counts.shape
    m = counts.sum(axis=1)
    unit, cat = np.nonzero(counts)  # row-major, so grouped by unit
    val = counts[unit, cat]
    k = np.bincount(unit, minlength=n_units)
    first = np.cumsum(k) - k
    reps = k[unit]  # each non-zero pairs with every non-zero of its unit
    left = np.repeat(np.arange(unit.size), reps)
    block = np.cumsum(reps) - reps
    right = first[unit[left]] + (np.arange(left.size) - np.repeat(block, reps))
    owner = unit[left]
    prod = val[left] * val[right]
    same = cat[left] == cat[right]
    prod[same] -= val[left][same]
    return owner, cat[left] * n_cat + cat[right], prod / (m[owner] - 1.0)


def _coincidence(counts: FloatArray) -> FloatArray:
    """Coincidence matrix of pairable units: the sum of their contributions."""
    c = counts.shape[1]
    _, cell, value = _unit_pairs(counts)
    o = np.bincount(cell, weights=value, minlength=c * c).astype(np.float64)
    return o.reshape(c, c)


def _pairable(counts: ArrayLike) -> FloatArray:
    """Count rows of the units with two or more ratings (the only ones that carry pairs)."""
    n = np.asarray(counts, dtype=np.float64)
    return n[n.sum(axis=1) >= 2]


def _alpha_from_coincidence(o: FloatArray, values: FloatArray, level: Level) -> FloatArray:
    """Alpha from (a batch of) coincidence matrices ``o`` of shape (..., C, C)."""
    marg = o.sum(axis=-1)
    total = marg.sum(axis=-1)
    d2 = _delta2(level, values, marg)
    observed = (o * d2).sum(axis=(-1, -2))
    expected = (marg[..., :, None] * marg[..., None, :] * d2).sum(axis=(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (total - 1.0) * observed / expected
    return np.where(expected > 0, alpha, np.nan)


def krippendorff_alpha_counts(
    counts: ArrayLike, categories: ArrayLike, level: Level = "ordinal"
) -> float:
    """Krippendorff's alpha from a units x categories count matrix.

    alpha = 1 - D_o / D_e = 1 - (n - 1) * sum_ck o_ck delta2_ck / sum_ck n_c n_k delta2_ck,
    where o is the coincidence matrix over pairable units (two or more ratings) and n_c its
    marginals (Krippendorff 2011, "Computing Krippendorff's alpha-reliability").

    Parameters
    ----------
    counts : array_like, shape (n_units, n_categories)
    categories : array_like, shape (n_categories,)
        Numeric value of each category (used by the interval and ratio metrics).
    level : {"nominal", "ordinal", "interval", "ratio"}

    Returns
    -------
    float
        NaN when undefined (fewer than two pairable values, or no variation at all).

    Examples
    --------
    Krippendorff's (2011) 4 observers x 12 units example gives nominal 0.743, ordinal 0.815
    and interval 0.849.
    """
    cats = np.asarray(categories, dtype=np.float64)
    pairable = _pairable(counts)
    if pairable.shape[0] == 0:
        return float("nan")
    return float(_alpha_from_coincidence(_coincidence(pairable), cats, level))


def krippendorff_alpha(
    matrix: ArrayLike, categories: ArrayLike | None = None, level: Level = "ordinal"
) -> float:
    """Krippendorff's alpha from a units x raters matrix with NaN for missing ratings.

    Parameters
    ----------
    matrix : array_like, shape (n_units, n_raters)
        Note the orientation: units are rows (the ``krippendorff`` package wants the
        transpose).
    categories : array_like, optional
        Possible values; defaults to the distinct observed values.
    level : {"nominal", "ordinal", "interval", "ratio"}
    """
    m = np.asarray(matrix, dtype=np.float64)
    cats = np.unique(m[~np.isnan(m)]) if categories is None else np.asarray(categories, float)
    return krippendorff_alpha_counts(value_counts(m, cats), cats, level)


def _resample_weights(
    rng: np.random.Generator, n_units: int, size: int, group: NDArray[np.int64], n_groups: int
) -> FloatArray:
    """How often each group of identical units is drawn in ``size`` unit resamples."""
    if n_groups <= 4096:
        # Drawing n units with replacement and counting how many fall in each group of
        # identical units is exactly a multinomial over the groups: O(groups), not O(units).
        p = np.bincount(group, minlength=n_groups) / n_units
        return rng.multinomial(n_units, p, size=size).astype(np.float64)
    draws = group[rng.integers(0, n_units, size=(size, n_units))]
    offs = draws + (np.arange(size) * n_groups)[:, None]
    return (
        np.bincount(offs.ravel(), minlength=size * n_groups)
        .reshape(size, n_groups)
        .astype(np.float64)
    )


def bootstrap_alpha(
    counts: ArrayLike,
    categories: ArrayLike,
    level: Level = "ordinal",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AlphaBootstrap:
    """Percentile bootstrap CI for alpha, resampling units (items) with replacement.

    Scheme: the *unit* (cluster) bootstrap. Each resample draws as many pairable units as the
    data has, with replacement; its coincidence matrix is the weighted sum of precomputed
    per-unit coincidence contributions (kept sparse: a unit with r ratings touches at most r^2
    cells), and alpha (D_o *and* D_e, hence also the ordinal metric's marginals) is recomputed
    from it exactly. Units with the same value counts share one contribution, so a resample
    costs one multinomial draw over the distinct unit patterns and one sparse product. We
    resample units rather than pairable values as in Hayes & Krippendorff (2007) because values
    within a unit are not independent (the same raters, the same item); resampling units keeps
    that dependence and is the standard nonparametric bootstrap for clustered data (e.g. Zapf
    et al. 2016, BMC Med Res Methodol 16:93).

    Parameters
    ----------
    counts : array_like, shape (n_units, n_categories)
    categories : array_like, shape (n_categories,)
    level : {"nominal", "ordinal", "interval", "ratio"}
    n_resamples : int
    confidence : float
    seed : int
        Seed for ``numpy.random.default_rng``; the interval is reproducible.

    Returns
    -------
    AlphaBootstrap
        NaN bounds when alpha is undefined in every resample.
    """
    cats = np.asarray(categories, dtype=np.float64)
    pairable = _pairable(counts)
    rng = np.random.default_rng(seed)
    n_units = pairable.shape[0]
    if n_units == 0 or n_resamples <= 0:
        return AlphaBootstrap(float("nan"), float("nan"), confidence, n_resamples, 0, seed)
    patterns, group = np.unique(pairable, axis=0, return_inverse=True)
    group = group.ravel().astype(np.int64)
    n_pat, c = patterns.shape
    # Sparse (patterns x C^2) matrix of coincidence contributions: a resample's coincidence
    # matrix is then the product of its pattern counts with it.
    owner, cell, value = _unit_pairs(patterns)
    parts = sparse.csr_matrix((value, (owner, cell)), shape=(n_pat, c * c))
    parts_t = parts.T.tocsr()
    chunk = max(1, min(n_resamples, 4_000_000 // max(n_pat, c * c)))
    alphas = []
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        w = _resample_weights(rng, n_units, size, group, n_pat)
        o = np.asarray(parts_t @ w.T).T.reshape(size, c, c)
        alphas.append(_alpha_from_coincidence(o, cats, level))
        done += size
    a = np.concatenate(alphas)
    valid = a[~np.isnan(a)]
    if valid.size == 0:
        return AlphaBootstrap(float("nan"), float("nan"), confidence, n_resamples, 0, seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    return AlphaBootstrap(float(low), float(high), confidence, n_resamples, int(valid.size), seed)


# --------------------------------------------------------------------------- kappa-like


def fleiss_kappa(counts: ArrayLike) -> FleissResult:
    """Fleiss' (1971) kappa; defined only when every unit has the same number of ratings.

    kappa = (P_bar - P_e) / (1 - P_e), with P_i = (sum_c n_ic^2 - m) / (m (m - 1)) and
    P_e = sum_c p_c^2.

    Parameters
    ----------
    counts : array_like, shape (n_units, n_categories)
        Units without any rating are ignored.

    Examples
    --------
    The 10 subjects x 14 raters table of the Wikipedia article gives 0.210; Fleiss' (1971)
    30 patients x 6 psychiatrists give 0.430.
    """
    n = np.asarray(counts, dtype=np.float64)
    n = n[n.sum(axis=1) > 0]
    if n.shape[0] == 0:
        return FleissResult(None, None, None, "no ratings")
    m = n.sum(axis=1)
    if not np.all(m == m[0]):
        lo, hi = int(m.min()), int(m.max())
        return FleissResult(
            None, None, None, f"items have different numbers of ratings ({lo} to {hi})"
        )
    r = m[0]
    if r < 2:
        return FleissResult(None, None, None, "every item has a single rating")
    p_i = ((n * n).sum(axis=1) - r) / (r * (r - 1))
    p_bar = float(p_i.mean())
    p_c = n.sum(axis=0) / n.sum()
    p_e = float((p_c * p_c).sum())
    if p_e >= 1.0:
        return FleissResult(None, p_bar, p_e, "all ratings fall in one category")
    return FleissResult((p_bar - p_e) / (1.0 - p_e), p_bar, p_e, None)


def gwet_weights(categories: ArrayLike, kind: WeightName = "linear") -> FloatArray:
    """Agreement weights w_kl in [0, 1] as defined by Gwet (2014, ch. 3) and irrCAC.

    ``identity``: 1 on the diagonal; ``linear``: 1 - |x_k - x_l| / (max - min);
    ``quadratic``: 1 - (x_k - x_l)^2 / (max - min)^2; ``ordinal``: 1 - M_kl / max M with
    M_kl = C(|k - l| + 1, 2) on category ranks.
    """
    x = np.asarray(categories, dtype=np.float64)
    q = x.size
    if kind == "identity":
        return np.eye(q)
    span = x.max() - x.min() if q > 1 else 1.0
    diff = np.abs(x[:, None] - x[None, :])
    if kind == "linear":
        return 1.0 - diff / span
    if kind == "quadratic":
        return 1.0 - diff**2 / span**2
    if kind == "ordinal":
        ranks = np.arange(q, dtype=np.float64)
        nkl = np.abs(ranks[:, None] - ranks[None, :]) + 1.0
        mkl = nkl * (nkl - 1.0) / 2.0
        return 1.0 - mkl / mkl.max() if mkl.max() > 0 else np.ones((q, q))
    raise ValueError(f"unknown weights {kind!r}")


def gwet_ac(counts: ArrayLike, categories: ArrayLike, weights: WeightName = "linear") -> GwetResult:
    """Gwet's AC1 (``weights="identity"``) or AC2 for many raters with missing ratings.

    Following Gwet (2014) and irrCAC's ``gwet.ac1.raw``:
    p_a = mean over units with r_i >= 2 of sum_k r_ik (r*_ik - 1) / (r_i (r_i - 1)), with
    r*_ik = sum_l w_kl r_il; pi_k = mean over all rated units of r_ik / r_i;
    p_e = sum(w) / (q (q - 1)) * sum_k pi_k (1 - pi_k); AC = (p_a - p_e) / (1 - p_e).
    ``q`` is the number of *possible* categories, so pass the whole scale.

    Examples
    --------
    irrCAC's ``cac.raw4raters`` gives AC1 0.77544 and quadratic AC2 0.914.
    """
    n = np.asarray(counts, dtype=np.float64)
    n = n[n.sum(axis=1) > 0]
    q = n.shape[1]
    w = gwet_weights(categories, weights)
    r = n.sum(axis=1)
    pairable = r >= 2
    if not pairable.any() or q < 2:
        return GwetResult(float("nan"), float("nan"), float("nan"), weights)
    r_star = n @ w.T
    agree = (n * (r_star - 1.0)).sum(axis=1)
    p_a = float((agree[pairable] / (r[pairable] * (r[pairable] - 1.0))).mean())
    pi = (n / r[:, None]).mean(axis=0)
    p_e = float(w.sum() / (q * (q - 1.0)) * (pi * (1.0 - pi)).sum())
    coef = (p_a - p_e) / (1.0 - p_e) if p_e < 1.0 else float("nan")
    return GwetResult(float(coef), p_a, p_e, weights)


def percent_agreement(counts: ArrayLike) -> float:
    """Mean over items (with 2+ ratings) of the share of rater pairs that agree exactly."""
    n = np.asarray(counts, dtype=np.float64)
    r = n.sum(axis=1)
    keep = r >= 2
    if not keep.any():
        return float("nan")
    same = (n[keep] * (n[keep] - 1.0)).sum(axis=1)
    return float((same / (r[keep] * (r[keep] - 1.0))).mean())


# --------------------------------------------------------------------------- raters


def rater_agreement(
    units: ArrayLike,
    raters: ArrayLike,
    values: ArrayLike,
    rater_names: list[str] | tuple[str, ...],
    groups: ArrayLike | None = None,
) -> list[RaterAgreement]:
    """Each rater against the leave-one-out consensus: the mean of the *other* raters.

    For every rating on a unit that at least one other rater also rated, the consensus is
    (sum of the unit's ratings - this rating) / (m_u - 1). Per rater we report the mean
    absolute deviation from it, the mean signed difference (severity / leniency) and
    Spearman's rho. A rater is flagged when their mean absolute deviation lies above the upper
    Tukey fence (Q3 + 1.5 IQR) of all raters' deviations, or when rho < 0 on 5+ ratings.

    Parameters
    ----------
    units, raters : array_like of int
        Unit and rater index of each rating.
    values : array_like of float
    rater_names : sequence of str
        Name of each rater index.
    groups : array_like of int, optional
        Cell (e.g. target x criterion) of each rating: consensus is computed within
        (cell, unit), so one call can pool all cells.
    """
    u = np.asarray(units, dtype=np.int64)
    r = np.asarray(raters, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    g = np.zeros_like(u) if groups is None else np.asarray(groups, dtype=np.int64)
    key = g * (int(u.max()) + 1 if u.size else 1) + u
    _, inv = np.unique(key, return_inverse=True)
    inv = inv.ravel()
    sums = np.bincount(inv, weights=v)
    cnt = np.bincount(inv)
    m = cnt[inv]
    ok = m >= 2
    consensus = np.full(v.shape, np.nan)
    consensus[ok] = (sums[inv][ok] - v[ok]) / (m[ok] - 1)
    n_r = len(rater_names)
    out_stats: list[tuple[int, float | None, float | None, float | None]] = []
    order = np.argsort(r, kind="stable")
    bounds = np.searchsorted(r[order], np.arange(n_r + 1))
    for i in range(n_r):
        sel = order[bounds[i] : bounds[i + 1]]
        sel = sel[ok[sel]]
        if sel.size == 0:
            out_stats.append((0, None, None, None))
            continue
        diff = v[sel] - consensus[sel]
        rho: float | None = None
        if sel.size >= 3 and np.ptp(v[sel]) > 0 and np.ptp(consensus[sel]) > 0:
            rho = float(sps.spearmanr(v[sel], consensus[sel]).statistic)
        out_stats.append((int(sel.size), float(np.abs(diff).mean()), float(diff.mean()), rho))
    mads = np.array([s[1] for s in out_stats if s[1] is not None and s[0] >= 3])
    fence = np.inf
    if mads.size >= 4:
        q1, q3 = np.quantile(mads, [0.25, 0.75])
        fence = q3 + 1.5 * (q3 - q1)
    result = []
    for name, (n_i, mad, bias, rho) in zip(rater_names, out_stats, strict=True):
        reasons: list[str] = []
        if mad is not None and n_i >= 3 and mad > fence + 1e-12:
            reasons.append(f"deviation {mad:.2f} above the Tukey fence {fence:.2f}")
        if rho is not None and n_i >= 5 and rho < 0:
            reasons.append(f"negative rank correlation with the others ({rho:.2f})")
        result.append(RaterAgreement(name, n_i, mad, bias, rho, bool(reasons), tuple(reasons)))
    return result


# --------------------------------------------------------------------------- summary


def agreement_summary(
    units: ArrayLike,
    raters: ArrayLike,
    values: ArrayLike,
    categories: ArrayLike,
    n_bootstrap: int = 1000,
    seed: int = 0,
    gwet_weights_name: WeightName = "linear",
) -> AgreementResult:
    """Every agreement coefficient for one cell, from long-format arrays.

    Parameters
    ----------
    units, raters : array_like of int
        Item and rater index of each rating (0-based, need not be contiguous).
    values : array_like
        Scores, each one of ``categories``.
    categories : array_like
        Every point of the rating scale, ascending.
    n_bootstrap, seed : int
        Resamples and seed for the alpha (ordinal) interval.
    gwet_weights_name : {"linear", "quadratic", "ordinal", "identity"}
        Weights of the reported AC2 (AC1 is reported separately).
    """
    u = np.asarray(units, dtype=np.int64)
    _, u_dense = np.unique(u, return_inverse=True)
    cats = np.asarray(categories, dtype=np.float64)
    counts = value_counts_long(u_dense.ravel(), values, cats)
    return AgreementResult(
        n_items=int(counts.shape[0]),
        n_raters=int(np.unique(np.asarray(raters)).size),
        n_ratings=int(counts.sum()),
        alpha_nominal=krippendorff_alpha_counts(counts, cats, "nominal"),
        alpha_ordinal=krippendorff_alpha_counts(counts, cats, "ordinal"),
        alpha_interval=krippendorff_alpha_counts(counts, cats, "interval"),
        alpha_ordinal_ci=bootstrap_alpha(counts, cats, "ordinal", n_bootstrap, seed=seed),
        fleiss=fleiss_kappa(counts),
        gwet_ac1=gwet_ac(counts, cats, "identity"),
        gwet_ac2=gwet_ac(counts, cats, gwet_weights_name),
        percent_agreement=percent_agreement(counts),
    )
