"""Comparing systems (generation runs, reference conversations) rated on shared Backgrounds.

Items that different systems generated from the same Background form a *block*: the
Background's difficulty is shared, so systems are compared within blocks, on item means (each
item's ratings averaged over its raters, as in :mod:`stats.paired`). Per target and criterion:

* two systems: Wilcoxon signed-rank test on the per-block differences, with the
  matched-pairs rank-biserial correlation and the Hodges-Lehmann shift;
* three or more: Friedman's test with Kendall's W on the blocks every system has, then every
  pair by Wilcoxon on the blocks both have, Holm-adjusted over the pairs;
* per-system means with t confidence intervals.

Incomplete blocks are counted and reported (:class:`BlockCoverage`), never dropped silently.
The question-vs-answer test of :mod:`stats.paired` is also run within each system.

(About 700 lines: the input table, the tests and their fixed-schema results are one family that
shares the block matrix; the numpydoc docstrings with formulas and references are half of it.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from stats.paired import (
    Alternative,
    HodgesLehmann,
    PairedComparison,
    WilcoxonResult,
    ZeroMethod,
    hodges_lehmann,
    holm,
    paired_comparison,
    wilcoxon_signed_rank,
)
from stats.ratings import TARGETS, RatingsTable

__all__ = [
    "BlockCoverage",
    "BlockMeans",
    "FriedmanResult",
    "PairwiseComparison",
    "SystemComparison",
    "SystemQuestionAnswer",
    "SystemSummary",
    "SystemsReport",
    "block_means_from_ratings",
    "block_means_from_rows",
    "compare_systems",
    "friedman_test",
    "mean_ci",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_MAX_ERRORS = 10
# Same rounding as stats.paired: item means are ratios of small integers.
_DECIMALS = 12


def _jsonable(value: Any) -> Any:
    """Plain JSON data: NaN and infinities become None, tuples become lists."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (NaN -> None)."""
        return dict(_jsonable(asdict(self)))  # type: ignore[call-overload]


# ---------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True, eq=False)
class BlockMeans:
    """Item means in tidy form, column-wise: one row per (block, system, target, criterion).

    Codes index into the name tuples; ``target`` is 0 for question and 1 for answer.
    ``n_ratings`` is how many ratings each mean averages (1 when unknown).
    """

    blocks: tuple[str, ...]
    systems: tuple[str, ...]
    criteria: tuple[str, ...]
    block: IntArray
    system: IntArray
    target: IntArray
    criterion: IntArray
    mean: FloatArray
    n_ratings: IntArray

    def __post_init__(self) -> None:
        n = self.mean.size
        for name in ("block", "system", "target", "criterion", "n_ratings"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must be a 1-D array as long as mean ({n})")
        if n and not np.isfinite(self.mean).all():
            raise ValueError("means must be finite numbers")
        key = self._key()
        order = np.argsort(key, kind="stable")
        dup = np.flatnonzero(key[order][1:] == key[order][:-1])
        if dup.size:
            problems = []
            for k in dup[:_MAX_ERRORS]:
                i = int(order[k])
                problems.append(
                    f"block {self.blocks[self.block[i]]!r} has several "
                    f"{TARGETS[self.target[i]]} means of system "
                    f"{self.systems[self.system[i]]!r} for {self.criteria[self.criterion[i]]!r}"
                )
            raise ValueError("; ".join(problems))

    def _key(self) -> IntArray:
        return ((self.block * len(self.systems) + self.system) * 2 + self.target) * len(
            self.criteria
        ) + self.criterion

    def __len__(self) -> int:
        return int(self.mean.size)

    def matrix(self, target: str, criterion: str) -> FloatArray:
        """Blocks x systems matrix of one cell's means, NaN where a system lacks the block."""
        mask = (self.target == TARGETS.index(target)) & (
            self.criterion == self.criteria.index(criterion)
        )
        m = np.full((len(self.blocks), len(self.systems)), np.nan)
        m[self.block[mask], self.system[mask]] = self.mean[mask]
        return m


def _codes(
    values: Sequence[str], order: Sequence[str] | None = None
) -> tuple[tuple[str, ...], IntArray]:
    names, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    if order is None:
        return tuple(str(x) for x in names), inverse.astype(np.int64)
    position = {name: i for i, name in enumerate(order)}
    missing = [str(x) for x in names if x not in position]
    if missing:
        raise ValueError(f"systems not in the given order: {', '.join(missing)}")
    remap = np.array([position[str(x)] for x in names], dtype=np.int64)
    return tuple(order), remap[inverse] if inverse.size else inverse.astype(np.int64)


def block_means_from_rows(
    rows: Iterable[Sequence[object]], systems: Sequence[str] | None = None
) -> BlockMeans:
    """Build :class:`BlockMeans` from (block, system, target, criterion, mean) rows.

    Parameters
    ----------
    rows : iterable of 5-sequences
        ``target`` is "question" or "answer"; ``mean`` is the item's mean score.
    systems : sequence of str, optional
        Order of the systems (pairwise differences are earlier minus later system); sorted
        names when omitted.
    """
    data = [tuple(r) for r in rows]
    bad = [i for i, r in enumerate(data) if len(r) != 5]
    if bad:
        raise ValueError(f"row {bad[0] + 1}: expected 5 fields, got {len(data[bad[0]])}")
    cols = list(zip(*data, strict=True)) if data else [(), (), (), (), ()]
    targets = [str(t).strip().lower() for t in cols[2]]
    wrong = sorted({t for t in targets if t not in TARGETS})
    if wrong:
        raise ValueError(f"targets must be 'question' or 'answer', got {wrong[:_MAX_ERRORS]}")
    blocks, block = _codes([str(x) for x in cols[0]])
    names, system = _codes([str(x) for x in cols[1]], systems)
    criteria, criterion = _codes([str(x) for x in cols[3]])
    n = len(data)
    return BlockMeans(
        blocks=blocks,
        systems=names,
        criteria=criteria,
        block=block,
        system=system,
        target=np.array([TARGETS.index(t) for t in targets], dtype=np.int64),
        criterion=criterion,
        mean=np.asarray(cols[4], dtype=np.float64).reshape(n),
        n_ratings=np.ones(n, dtype=np.int64),
    )


def block_means_from_ratings(
    table: RatingsTable,
    item_block: Mapping[str, str],
    item_system: Mapping[str, str],
    systems: Sequence[str] | None = None,
    combine: bool = False,
) -> BlockMeans:
    """Average a ratings table per item and label each item with its block and system.

    Vectorised (``np.bincount``): a million ratings take a fraction of a second.
    With ``combine``, several items of one system on one block (several samples generated per
    Background) are averaged into one mean, each item weighing the same; ``n_ratings`` is then
    the ratings behind that mean.

    Parameters
    ----------
    table : RatingsTable
    item_block, item_system : mapping item name -> Background id / system name
        Every rated item must be in both.
    systems : sequence of str, optional
        Order of the systems, see :func:`block_means_from_rows`.

    Raises
    ------
    ValueError
        Items without a block or system, or two items of one system on one block.
    """
    missing = [i for i in table.items if i not in item_block or i not in item_system]
    if missing:
        more = f" (and {len(missing) - _MAX_ERRORS} more)" if len(missing) > _MAX_ERRORS else ""
        raise ValueError(f"items without a block or system: {missing[:_MAX_ERRORS]}{more}")
    blocks, item_to_block = _codes([item_block[i] for i in table.items])
    names, item_to_system = _codes([item_system[i] for i in table.items], systems)
    n_items, n_crit = len(table.items), len(table.criteria)
    cell = (table.item * 2 + table.target) * n_crit + table.criterion
    size = n_items * 2 * n_crit
    counts = np.bincount(cell, minlength=size)
    sums = np.bincount(cell, weights=table.score.astype(np.float64), minlength=size)
    used = np.flatnonzero(counts)
    item, rest = np.divmod(used, 2 * n_crit)
    target, criterion = np.divmod(rest, n_crit)
    block, system = item_to_block[item], item_to_system[item]
    mean, n_ratings = sums[used] / counts[used], counts[used].astype(np.int64)
    if combine:
        key = ((block * len(names) + system) * 2 + target) * n_crit + criterion
        keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        per_key = np.bincount(inverse, minlength=keys.size)
        mean = np.bincount(inverse, weights=mean, minlength=keys.size) / per_key
        n_ratings = np.bincount(inverse, weights=n_ratings, minlength=keys.size).astype(np.int64)
        block, system = block[first], system[first]
        target, criterion = target[first], criterion[first]
    return BlockMeans(
        blocks=blocks,
        systems=names,
        criteria=table.criteria,
        block=block,
        system=system,
        target=target.astype(np.int64),
        criterion=criterion.astype(np.int64),
        mean=mean,
        n_ratings=n_ratings,
    )


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class FriedmanResult(_ToDict):
    """Friedman's rank test on complete blocks, with Kendall's coefficient of concordance."""

    n_blocks: int
    n_systems: int
    statistic: float
    df: int
    p_value: float
    kendall_w: float
    mean_ranks: tuple[float, ...]
    tie_correction: float
    method: str


@dataclass(frozen=True)
class SystemSummary(_ToDict):
    """One system's item means in one cell: mean with its t confidence interval."""

    system: str
    n_blocks: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    confidence: float
    ci_method: str
    mean_rank: float | None  # over the Friedman blocks; None without a Friedman test


@dataclass(frozen=True)
class PairwiseComparison(_ToDict):
    """System a vs system b on the blocks both have: differences a - b."""

    system_a: str
    system_b: str
    n_blocks: int
    mean_a: float
    mean_b: float
    mean_difference: float
    median_difference: float
    wilcoxon: WilcoxonResult
    hodges_lehmann: HodgesLehmann
    p_value_holm: float | None


@dataclass(frozen=True)
class BlockCoverage(_ToDict):
    """How the blocks of one cell are filled; says what each test used."""

    n_blocks: int  # blocks with at least one system
    n_complete: int  # blocks with every compared system (Friedman's blocks)
    n_incomplete: int  # blocks missing at least one system: dropped by Friedman only
    n_single: int  # blocks with one system only: in the means, in no test
    blocks_per_system: tuple[int, ...]
    systems_without_data: tuple[str, ...]


@dataclass(frozen=True)
class SystemComparison(_ToDict):
    """Systems compared on one target and criterion."""

    target: str
    criterion: str
    systems: tuple[str, ...]
    test: str  # "wilcoxon" (two systems), "friedman" (three or more) or "none"
    coverage: BlockCoverage
    summaries: tuple[SystemSummary, ...]
    friedman: FriedmanResult | None
    pairwise: tuple[PairwiseComparison, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SystemQuestionAnswer(_ToDict):
    """The question-vs-answer test of :mod:`stats.paired` within one system, per criterion.

    ``p_value_holm`` in each comparison is adjusted over this system's criteria.
    """

    system: str
    comparisons: tuple[PairedComparison, ...]
    skipped: tuple[str, ...]  # criteria with no item rated on both targets


@dataclass(frozen=True)
class SystemsReport(_ToDict):
    """Everything :func:`compare_systems` computes."""

    systems: tuple[str, ...]
    criteria: tuple[str, ...]
    n_blocks: int
    n_means: int
    comparisons: tuple[SystemComparison, ...]
    question_vs_answer: tuple[SystemQuestionAnswer, ...]
    settings: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Tests


def mean_ci(x: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, standard deviation and Student t confidence interval.

    mean +- t_{1 - alpha/2, n - 1} s / sqrt(n), with s the sample SD (ddof 1). Item means
    average several ratings, so they are close to normal and the t interval is adequate;
    with one value the interval is undefined (NaN).

    Returns
    -------
    (mean, sd, low, high)
    """
    arr = np.asarray(x, dtype=np.float64).ravel()
    n = arr.size
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(arr.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    sd = float(arr.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def friedman_test(x: ArrayLike) -> FriedmanResult:
    """Friedman's test for k related samples and Kendall's W, on a blocks x systems array.

    Values are ranked within each block (average ranks for ties), R_j is system j's rank sum
    over the n blocks and

        Q = [12 / (n k (k+1)) sum_j R_j^2 - 3 n (k+1)] / C,
        C = 1 - sum_blocks sum_ties (t^3 - t) / (n (k^3 - k)),

    compared with chi-squared on k - 1 degrees of freedom (as ``scipy.stats.friedmanchisquare``
    and R's ``friedman.test``). Kendall's coefficient of concordance, corrected for ties the
    same way, is W = Q / (n (k - 1)), between 0 (no agreement among blocks on the order of the
    systems) and 1 (every block orders them the same).

    Parameters
    ----------
    x : array_like, shape (n_blocks, k)
        Complete blocks only (no NaN); k >= 2.

    Returns
    -------
    FriedmanResult
        When every block is tied throughout (C = 0) the test is skipped: Q = 0, p = 1, W NaN,
        method "none".

    References
    ----------
    Friedman, M. (1937). JASA 32, 675-701. Kendall, M. G. & Babington Smith, B. (1939). Ann.
    Math. Stat. 10, 275-287. Hollander, Wolfe & Chicken (2014), Nonparametric Statistical
    Methods, 3rd ed., sec. 7.1-7.2.

    Examples
    --------
    R's ``friedman.test(RoundingTimes)`` (Hollander & Wolfe 1973, p. 140): 22 players x 3
    base-running methods gives Friedman chi-squared = 11.143, df = 2, p = 0.003805, hence
    W = 11.143 / 44 = 0.2532.
    """
    arr = np.asarray(np.round(np.asarray(x, dtype=np.float64), _DECIMALS), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError("need a blocks x systems array with at least 2 systems")
    if np.isnan(arr).any():
        raise ValueError("Friedman's test needs complete blocks (no NaN)")
    n, k = arr.shape
    if n == 0:
        raise ValueError("no complete blocks")
    ranks = sps.rankdata(arr, axis=1)
    rank_sums = ranks.sum(axis=0)
    ties = _tie_sum(arr)
    c = 1.0 - ties / (n * (k**3 - k))
    mean_ranks = tuple(float(r) for r in rank_sums / n)
    if c <= 1e-12:
        return FriedmanResult(n, k, 0.0, k - 1, 1.0, math.nan, mean_ranks, 0.0, "none")
    q = (12.0 / (n * k * (k + 1)) * float(np.sum(rank_sums**2)) - 3.0 * n * (k + 1)) / c
    q = max(q, 0.0)
    return FriedmanResult(
        n_blocks=n,
        n_systems=k,
        statistic=q,
        df=k - 1,
        p_value=float(sps.chi2.sf(q, k - 1)),
        kendall_w=q / (n * (k - 1)),
        mean_ranks=mean_ranks,
        tie_correction=float(c),
        method="chi-squared",
    )


def _tie_sum(arr: FloatArray) -> float:
    """sum over rows and tie groups of t^3 - t, vectorised: each tied value adds t^2 - 1."""
    s = np.sort(arr, axis=1)
    k = s.shape[1]
    new = np.ones_like(s, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    idx = np.broadcast_to(np.arange(k), s.shape)
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
    end_new = np.ones_like(new)
    end_new[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(end_new, idx, k)[:, ::-1], axis=1)[:, ::-1]
    t = (end - start + 1).astype(np.float64)
    return float(np.sum(t * t - 1.0))


def _pairwise(
    m: FloatArray,
    names: tuple[str, ...],
    alternative: Alternative,
    zero_method: ZeroMethod,
    confidence: float,
) -> tuple[list[PairwiseComparison], list[str]]:
    out: list[PairwiseComparison] = []
    notes: list[str] = []
    for a, b in combinations(range(len(names)), 2):
        both = ~np.isnan(m[:, a]) & ~np.isnan(m[:, b])
        if not both.any():
            notes.append(f"{names[a]} and {names[b]} share no block: not compared")
            continue
        d = np.round(m[both, a] - m[both, b], _DECIMALS) + 0.0
        out.append(
            PairwiseComparison(
                system_a=names[a],
                system_b=names[b],
                n_blocks=int(both.sum()),
                mean_a=float(m[both, a].mean()),
                mean_b=float(m[both, b].mean()),
                mean_difference=float(d.mean()),
                median_difference=float(np.median(d)),
                wilcoxon=wilcoxon_signed_rank(d, alternative, zero_method),
                hodges_lehmann=hodges_lehmann(d, confidence),
                p_value_holm=None,
            )
        )
    adjusted = holm([p.wilcoxon.p_value for p in out])
    return [replace(p, p_value_holm=h) for p, h in zip(out, adjusted, strict=True)], notes


def _compare_cell(
    data: BlockMeans,
    target: str,
    criterion: str,
    alternative: Alternative,
    zero_method: ZeroMethod,
    confidence: float,
) -> SystemComparison | None:
    full = data.matrix(target, criterion)
    present = ~np.isnan(full)
    rows = present.any(axis=1)
    if not rows.any():
        return None
    has_data = np.asarray(present.any(axis=0), dtype=bool)
    names = tuple(s for s, h in zip(data.systems, has_data.tolist(), strict=True) if h)
    without = tuple(s for s, h in zip(data.systems, has_data.tolist(), strict=True) if not h)
    m = full[rows][:, has_data]
    present = present[rows][:, has_data]
    complete = present.all(axis=1)
    per_block = present.sum(axis=1)
    coverage = BlockCoverage(
        n_blocks=int(m.shape[0]),
        n_complete=int(complete.sum()),
        n_incomplete=int((~complete).sum()),
        n_single=int((per_block == 1).sum()),
        blocks_per_system=tuple(int(c) for c in present.sum(axis=0)),
        systems_without_data=without,
    )
    notes: list[str] = []
    if without:
        notes.append(f"no {target} ratings of {criterion!r} from: {', '.join(without)}")
    if coverage.n_single:
        notes.append(
            f"{coverage.n_single} of {coverage.n_blocks} blocks have one system only: "
            "they count in that system's mean but in no test"
        )
    friedman: FriedmanResult | None = None
    k = len(names)
    if k >= 3:
        test = "friedman"
        if coverage.n_incomplete:
            notes.append(
                f"Friedman's test uses the {coverage.n_complete} complete blocks of "
                f"{coverage.n_blocks} ({coverage.n_incomplete} incomplete blocks dropped); "
                "pairwise tests use every block both systems have"
            )
        if coverage.n_complete >= 2:
            friedman = friedman_test(m[complete])
        else:
            notes.append(f"only {coverage.n_complete} complete block(s): Friedman's test not run")
    elif k == 2:
        test = "wilcoxon"
        if coverage.n_incomplete:
            notes.append(
                f"the Wilcoxon test uses the {coverage.n_complete} blocks both systems have "
                f"({coverage.n_incomplete} of {coverage.n_blocks} blocks have one system only)"
            )
    else:
        test = "none"
        notes.append("only one system rated: nothing to compare")
    pairwise, pair_notes = _pairwise(m, names, alternative, zero_method, confidence)
    notes += pair_notes
    summaries = []
    for j, name in enumerate(names):
        mean, sd, low, high = mean_ci(m[present[:, j], j], confidence)
        summaries.append(
            SystemSummary(
                system=name,
                n_blocks=int(present[:, j].sum()),
                mean=mean,
                sd=sd,
                ci_low=low,
                ci_high=high,
                confidence=confidence,
                ci_method="t",
                mean_rank=friedman.mean_ranks[j] if friedman is not None else None,
            )
        )
    return SystemComparison(
        target=target,
        criterion=criterion,
        systems=names,
        test=test,
        coverage=coverage,
        summaries=tuple(summaries),
        friedman=friedman,
        pairwise=tuple(pairwise),
        notes=tuple(notes),
    )


def _question_answer(
    data: BlockMeans,
    alternative: Alternative,
    zero_method: ZeroMethod,
    confidence: float,
    n_permutations: int,
    seed: int,
) -> list[SystemQuestionAnswer]:
    out = []
    for s, system in enumerate(data.systems):
        comparisons: list[PairedComparison] = []
        skipped: list[str] = []
        for c, criterion in enumerate(data.criteria):
            mask = (data.system == s) & (data.criterion == c)
            if not mask.any():
                continue
            both = np.full((len(data.blocks), 2), np.nan)
            both[data.block[mask], data.target[mask]] = data.mean[mask]
            paired = ~np.isnan(both).any(axis=1)
            if not paired.any():
                skipped.append(criterion)
                continue
            comparisons.append(
                paired_comparison(
                    criterion,
                    both[paired, 0],
                    both[paired, 1],
                    alternative,
                    zero_method,
                    confidence,
                    n_permutations,
                    seed,
                )
            )
        adjusted = holm([c.wilcoxon.p_value for c in comparisons])
        comparisons = [
            replace(c, p_value_holm=p) for c, p in zip(comparisons, adjusted, strict=True)
        ]
        out.append(SystemQuestionAnswer(system, tuple(comparisons), tuple(skipped)))
    return out


def compare_systems(
    data: BlockMeans,
    alternative: Alternative = "two-sided",
    zero_method: ZeroMethod = "wilcox",
    confidence: float = 0.95,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> SystemsReport:
    """Compare systems on shared blocks, per target and criterion, and question vs answer.

    For each target and criterion, the blocks x systems matrix of item means is tested:

    * two systems: Wilcoxon signed-rank test on the differences (first - second system) of the
      blocks both have (:func:`stats.paired.wilcoxon_signed_rank`: exact, sign-flip or normal
      approximation, as there), rank-biserial r and Hodges-Lehmann shift with its CI;
    * k >= 3 systems: :func:`friedman_test` with Kendall's W on the complete blocks, then all
      k (k - 1) / 2 pairs as above, each on the blocks both systems have, with Holm-adjusted
      p-values over the pairs (reported whatever Friedman's p: read them as post-hoc when it
      is significant);
    * each system's mean over all its blocks with a Student t interval (:func:`mean_ci`).

    Blocks missing some systems are counted in :class:`BlockCoverage` and described in
    ``notes``. Within each system, :func:`stats.paired.paired_comparison` tests question vs
    answer per criterion (Holm over criteria).

    Parameters
    ----------
    data : BlockMeans
        From :func:`block_means_from_ratings` or :func:`block_means_from_rows`; the order of
        ``data.systems`` fixes the sign of the pairwise differences.
    alternative, zero_method : see :func:`stats.paired.wilcoxon_signed_rank`
    confidence : float
        Level of the mean and Hodges-Lehmann intervals.
    n_permutations, seed : int
        Sign-flip test of the question-vs-answer comparisons.

    Returns
    -------
    SystemsReport

    Notes
    -----
    The normal-approximation p-values of Friedman's test (chi-squared) are those of
    ``scipy.stats.friedmanchisquare`` and R's ``friedman.test``. Comparing systems by their
    raw means is fair only on complete blocks; the pairwise mean differences are matched.
    """
    comparisons = []
    for target in TARGETS:
        for criterion in data.criteria:
            cell = _compare_cell(data, target, criterion, alternative, zero_method, confidence)
            if cell is not None:
                comparisons.append(cell)
    qa = _question_answer(data, alternative, zero_method, confidence, n_permutations, seed)
    return SystemsReport(
        systems=data.systems,
        criteria=data.criteria,
        n_blocks=len(data.blocks),
        n_means=len(data),
        comparisons=tuple(comparisons),
        question_vs_answer=tuple(qa),
        settings={
            "alternative": alternative,
            "zero_method": zero_method,
            "confidence": confidence,
            "ci_method": "Student t on item means",
            "pairwise_adjustment": "holm",
            "n_permutations": n_permutations,
            "seed": seed,
        },
    )
