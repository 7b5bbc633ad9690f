"""Paired comparison of question vs answer ratings: Wilcoxon signed-rank test and friends.

The unit of analysis is the *item*: each item's ratings are averaged per target across its
raters and the test runs on the per-item differences (question - answer). Testing individual
ratings instead would treat several raters' scores of the same item as independent
observations (pseudo-replication) and overstate the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

__all__ = [
    "HodgesLehmann",
    "PairedComparison",
    "PermutationResult",
    "WilcoxonResult",
    "hodges_lehmann",
    "holm",
    "paired_comparison",
    "sign_flip_test",
    "signed_rank_null_cdf",
    "walsh_order_statistics",
    "wilcoxon_signed_rank",
]

Alternative = Literal["two-sided", "greater", "less"]
ZeroMethod = Literal["wilcox", "pratt", "zsplit"]
FloatArray = NDArray[np.float64]

# Item means of integer scores are ratios of small integers; rounding the differences removes
# floating-point noise (0.4 vs 0.39999999999999997) that would otherwise hide true ties.
_DECIMALS = 12
_EXACT_MAX_N = 50  # scipy's own threshold for the exact null distribution
_PERMUTATION_MAX_N = 13  # 2**13 sign flips < scipy's default 9999 resamples: deterministic


@dataclass(frozen=True)
class WilcoxonResult:
    """Wilcoxon signed-rank test on paired differences (scipy.stats.wilcoxon)."""

    n: int
    n_zero: int
    statistic: float
    r_plus: float
    r_minus: float
    p_value: float
    alternative: str
    zero_method: str
    method: str
    rank_biserial: float


@dataclass(frozen=True)
class HodgesLehmann:
    """Hodges-Lehmann estimate (median of Walsh averages) with its distribution-free CI."""

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    achieved_confidence: float
    method: str


@dataclass(frozen=True)
class PermutationResult:
    """Sign-flip permutation test of the mean difference."""

    statistic: float
    p_value: float
    method: str
    n_resamples: int


@dataclass(frozen=True)
class PairedComparison:
    """Everything reported for one criterion: question vs answer on item means."""

    criterion: str
    n_items: int
    question_mean: float
    answer_mean: float
    mean_difference: float
    median_difference: float
    wilcoxon: WilcoxonResult
    hodges_lehmann: HodgesLehmann
    permutation: PermutationResult
    p_value_holm: float | None = None


def _clean(d: ArrayLike) -> FloatArray:
    arr = np.round(np.asarray(d, dtype=np.float64).ravel(), _DECIMALS)
    if np.isnan(arr).any():
        raise ValueError("differences contain NaN")
    return arr + 0.0  # turn -0.0 into 0.0


def _signed_ranks(d: FloatArray, zero_method: ZeroMethod) -> tuple[float, float, float]:
    """R+, R- and the total rank sum used, for the chosen treatment of zeros."""
    if zero_method == "wilcox":
        d = d[d != 0]
    if d.size == 0:
        return 0.0, 0.0, 0.0
    ranks = sps.rankdata(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    r_minus = float(ranks[d < 0].sum())
    r_zero = float(ranks[d == 0].sum())
    if zero_method == "zsplit":
        r_plus += r_zero / 2.0
        r_minus += r_zero / 2.0
    return r_plus, r_minus, r_plus + r_minus


def wilcoxon_signed_rank(
    d: ArrayLike, alternative: Alternative = "two-sided", zero_method: ZeroMethod = "wilcox"
) -> WilcoxonResult:
    """Wilcoxon signed-rank test of H0 "differences symmetric about 0", via scipy.

    We choose the method ourselves (and tell scipy), so the one reported is the one used:
    ``exact`` null distribution when n <= 50 and there are no ties or zeros; ``permutation``
    (all 2^n sign flips, i.e. exact given the ties) when n <= 13 with ties or zeros;
    otherwise ``asymptotic`` (normal approximation with tie correction, no continuity
    correction: scipy's default, so ``scipy.stats.wilcoxon(d)`` reproduces the numbers).
    This mirrors scipy's own ``method="auto"``.

    The effect size is the matched-pairs rank-biserial correlation (Kerby 2014),
    r = (R+ - R-) / (R+ + R-), on the same ranks as the test.

    Parameters
    ----------
    d : array_like
        Paired differences (question - answer).
    alternative : {"two-sided", "greater", "less"}
        "greater": questions rated higher.
    zero_method : {"wilcox", "pratt", "zsplit"}
        "wilcox" (default) drops zero differences, like R's ``wilcox.test``.

    Returns
    -------
    WilcoxonResult
        ``statistic`` is scipy's: min(R+, R-) for two-sided tests, else R+. With no non-zero
        difference the test is skipped: statistic 0, p = 1, method "none".

    Examples
    --------
    Darwin's corn data (scipy docs): d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60,
    -67, 75] gives W = 24, p = 0.041259765625 (exact, two-sided).
    """
    arr = _clean(d)
    n = int(arr.size)
    if n == 0:
        raise ValueError("no paired differences to test")
    n_zero = int((arr == 0).sum())
    r_plus, r_minus, total = _signed_ranks(arr, zero_method)
    rank_biserial = (r_plus - r_minus) / total if total > 0 else 0.0
    if n_zero == n:
        return WilcoxonResult(
            n, n_zero, 0.0, 0.0, 0.0, 1.0, alternative, zero_method, "none", rank_biserial
        )
    nonzero = np.abs(arr[arr != 0])
    has_ties = np.unique(nonzero).size < nonzero.size
    method: str | sps.PermutationMethod
    if n <= _EXACT_MAX_N and not has_ties and n_zero == 0:
        method, name = "exact", "exact"
    elif n <= _PERMUTATION_MAX_N:
        method, name = sps.PermutationMethod(n_resamples=9999), "permutation"
    else:
        method, name = "asymptotic", "asymptotic"
    res = sps.wilcoxon(arr, zero_method=zero_method, alternative=alternative, method=method)
    return WilcoxonResult(
        n=n,
        n_zero=n_zero,
        statistic=float(res.statistic),
        r_plus=r_plus,
        r_minus=r_minus,
        p_value=float(min(1.0, res.pvalue)),
        alternative=alternative,
        zero_method=zero_method,
        method=name,
        rank_biserial=float(rank_biserial),
    )


def signed_rank_null_cdf(n: int) -> FloatArray:
    """P(T+ <= t) for t = 0..n(n+1)/2 under H0, no ties (exact, by dynamic programming)."""
    m = n * (n + 1) // 2
    ways = np.zeros(m + 1, dtype=np.float64)
    ways[0] = 1.0
    for k in range(1, n + 1):
        # Each rank k is either positive (adds k to T+) or negative: counts stay exact
        # integers in float64 up to n = 50 (2**50 < 2**53).
        ways[k:] = ways[k:] + ways[: m + 1 - k].copy()
    return np.cumsum(ways) / 2.0**n


def walsh_order_statistics(d: ArrayLike, ranks: ArrayLike) -> FloatArray:
    """Order statistics of the n(n+1)/2 Walsh averages (d_i + d_j)/2, i <= j, by 1-based rank.

    Never materialises all averages: identical values are grouped (item-mean differences take
    few distinct values), and with many distinct values a bisection on the value counts the
    averages below a threshold in O(n log n) per step, then sorts the few left in the bracket.
    """
    x = np.sort(np.asarray(d, dtype=np.float64).ravel())
    ks = np.asarray(ranks, dtype=np.int64)
    n = x.size
    total = n * (n + 1) // 2
    if n == 0 or np.any(ks < 1) or np.any(ks > total):
        raise ValueError("ranks out of range")
    values, counts = np.unique(x, return_counts=True)
    if values.size <= 3000:
        a, b = np.triu_indices(values.size)
        avg = (values[a] + values[b]) / 2.0
        c = counts.astype(np.float64)
        weight = np.where(a == b, c[a] * (c[a] + 1) / 2.0, c[a] * c[b])
        order = np.argsort(avg, kind="stable")
        cum = np.cumsum(weight[order])
        return avg[order][np.searchsorted(cum, ks, side="left")]
    return np.array([_walsh_select(x, int(k)) for k in ks])


def _walsh_count(x: FloatArray, t: float) -> int:
    """Number of Walsh averages <= t (x sorted)."""
    j = np.searchsorted(x, 2.0 * t - x, side="right")
    return int(np.maximum(j - np.arange(x.size), 0).sum())


def _walsh_select(x: FloatArray, k: int) -> float:
    lo, hi = float(x[0]) - 1.0, float(x[-1])
    n = x.size
    for _ in range(200):
        if _walsh_count(x, hi) - _walsh_count(x, lo) <= max(4 * n, 10_000):
            break
        mid = (lo + hi) / 2.0
        if mid <= lo or mid >= hi:
            return hi
        if _walsh_count(x, mid) >= k:
            hi = mid
        else:
            lo = mid
    idx = np.arange(n)
    j_lo = np.maximum(np.searchsorted(x, 2.0 * lo - x, side="right"), idx)
    j_hi = np.maximum(np.searchsorted(x, 2.0 * hi - x, side="right"), idx)
    cand = np.concatenate(
        [(x[i] + x[j_lo[i] : j_hi[i]]) / 2.0 for i in range(n) if j_hi[i] > j_lo[i]]
    )
    cand.sort()
    return float(cand[k - _walsh_count(x, lo) - 1])


def hodges_lehmann(d: ArrayLike, confidence: float = 0.95) -> HodgesLehmann:
    """Hodges-Lehmann estimate of the pseudo-median shift with its signed-rank CI.

    The estimate is the median of the Walsh averages of all n differences (zeros included,
    as in Hollander & Wolfe 2014, sec. 3.2). The CI (sec. 3.3) is
    [W_(C), W_(M + 1 - C)] with M = n(n+1)/2 and C = M + 1 - t, t the upper alpha/2 critical
    value of the signed-rank statistic: exact for n <= 50, else the large-sample
    C = floor(n(n+1)/4 - z sqrt(n(n+1)(2n+1)/24)). Ties make it approximate. When n is too
    small for the requested level the widest interval is returned and
    ``achieved_confidence`` says what it covers.

    Parameters
    ----------
    d : array_like
        Paired differences.
    confidence : float
        Nominal coverage, default 0.95.
    """
    x = _clean(d)
    n = x.size
    if n == 0:
        raise ValueError("no paired differences")
    m = n * (n + 1) // 2
    est = float(np.mean(walsh_order_statistics(x, [(m + 1) // 2, m // 2 + 1])))
    alpha = 1.0 - confidence
    if n <= _EXACT_MAX_N:
        cdf = signed_rank_null_cdf(n)
        # Largest C with P(T+ <= C - 1) <= alpha / 2 (at least 1).
        c = max(1, int(np.searchsorted(cdf, alpha / 2.0 + 1e-12, side="right")))
        achieved = 1.0 - 2.0 * float(cdf[c - 1]) if c - 1 < cdf.size else 0.0
        method = "exact"
    else:
        z = float(sps.norm.ppf(1.0 - alpha / 2.0))
        c = max(1, int(np.floor(n * (n + 1) / 4.0 - z * np.sqrt(n * (n + 1) * (2 * n + 1) / 24))))
        achieved = confidence
        method = "normal"
    low, high = walsh_order_statistics(x, [c, m + 1 - c])
    return HodgesLehmann(est, float(low), float(high), confidence, achieved, method)


def sign_flip_test(
    d: ArrayLike,
    alternative: Alternative = "two-sided",
    n_resamples: int = 10_000,
    seed: int = 0,
    exact_max_n: int = 20,
) -> PermutationResult:
    """Sign-flip permutation test of the sum (equivalently mean) of paired differences.

    Under H0 each difference is equally likely to be + or -. With at most ``exact_max_n``
    non-zero differences all 2^n sign patterns are enumerated (exact p-value); otherwise
    ``n_resamples`` seeded random patterns give p = (b + 1) / (m + 1) (Phipson & Smyth 2010).
    Random flips are drawn per distinct |d| value as binomial counts, which has exactly the
    distribution of flipping each copy independently but costs O(distinct values).

    Parameters
    ----------
    d : array_like
    alternative : {"two-sided", "greater", "less"}
    n_resamples : int
    seed : int
    exact_max_n : int
    """
    x = _clean(d)
    t_obs = float(x.sum())
    a = np.abs(x[x != 0])
    if a.size == 0:
        return PermutationResult(t_obs, 1.0, "exact", 1)
    eps = 1e-9 * max(1.0, float(a.sum()))

    def extreme(t: FloatArray) -> NDArray[np.bool_]:
        if alternative == "greater":
            return t >= t_obs - eps
        if alternative == "less":
            return t <= t_obs + eps
        return np.abs(t) >= abs(t_obs) - eps

    if a.size <= exact_max_n:
        n = a.size
        hits = 0
        bits = np.arange(n, dtype=np.int64)
        step = 1 << 16
        for start in range(0, 1 << n, step):
            codes = np.arange(start, min(start + step, 1 << n), dtype=np.int64)
            signs = 1.0 - 2.0 * ((codes[:, None] >> bits) & 1)
            hits += int(extreme(signs @ a).sum())
        return PermutationResult(t_obs, hits / float(1 << n), "exact", 1 << n)
    values, counts = np.unique(a, return_counts=True)
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, min(n_resamples, 5_000_000 // values.size))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        plus = rng.binomial(counts, 0.5, size=(size, values.size))
        t = (2.0 * plus - counts) @ values
        hits += int(extreme(t).sum())
        done += size
    return PermutationResult(t_obs, (hits + 1) / (n_resamples + 1), "monte-carlo", n_resamples)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjusted p-values; ``None`` entries are skipped and kept.

    adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)) over the m p-values sorted ascending.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]
    """
    idx = [i for i, p in enumerate(p_values) if p is not None and not np.isnan(p)]
    ps = np.array([p_values[i] for i in idx], dtype=np.float64)
    out: list[float | None] = [None] * len(p_values)
    if ps.size == 0:
        return out
    order = np.argsort(ps, kind="stable")
    m = ps.size
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * ps[order]))
    for rank, j in enumerate(order):
        out[idx[j]] = float(adj[rank])
    return out


def paired_comparison(
    criterion: str,
    question: ArrayLike,
    answer: ArrayLike,
    alternative: Alternative = "two-sided",
    zero_method: ZeroMethod = "wilcox",
    confidence: float = 0.95,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Question vs answer for one criterion, from per-item mean scores.

    Parameters
    ----------
    criterion : str
    question, answer : array_like, shape (n_items,)
        Each item's mean score for the question and for the answer (same item order).
    alternative, zero_method : see :func:`wilcoxon_signed_rank`
    confidence : float
        Level of the Hodges-Lehmann interval.
    n_permutations, seed : int
        Monte Carlo settings of the sign-flip test (used when more than 20 non-zero pairs).
    """
    q = np.asarray(question, dtype=np.float64)
    a = np.asarray(answer, dtype=np.float64)
    if q.shape != a.shape or q.ndim != 1:
        raise ValueError("question and answer must be 1-D arrays of the same length")
    d = _clean(q - a)
    return PairedComparison(
        criterion=criterion,
        n_items=int(d.size),
        question_mean=float(q.mean()),
        answer_mean=float(a.mean()),
        mean_difference=float(d.mean()),
        median_difference=float(np.median(d)),
        wilcoxon=wilcoxon_signed_rank(d, alternative, zero_method),
        hodges_lehmann=hodges_lehmann(d, confidence),
        permutation=sign_flip_test(d, alternative, n_permutations, seed),
    )
