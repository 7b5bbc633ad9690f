"""The report's system comparison: which items belong to which system and Background, the
tests of :mod:`stats.systems` on a ratings table, and their text, CSV and conclusion lines.

Django-free: :mod:`stats.sources` reads the labels (each item's block and source) from the
database; a ratings CSV has none, so its report has no system comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stats.paired import Alternative, ZeroMethod
from stats.ratings import RatingsTable
from stats.systems import (
    PairwiseComparison,
    SystemComparison,
    SystemsReport,
    block_means_from_ratings,
    compare_systems,
)

__all__ = [
    "REFERENCE_SYSTEM",
    "SystemLabels",
    "compare_table_systems",
    "system_conclusions",
    "system_order",
    "system_warnings",
    "systems_csv_rows",
    "systems_text",
]

REFERENCE_SYSTEM = "reference"
UNLABELLED = "(no source)"

SYSTEM_METHOD_NOTE = (
    "Systems (item sources: generation runs, 'reference' conversations) are compared on item "
    "means matched by Background: several items of one system on one Background are averaged "
    "first. Two systems: Wilcoxon signed-rank test on the per-Background differences (earlier "
    "minus later system; the reference comes last). Three or more: Friedman's test with "
    "Kendall's W on the Backgrounds every system has, then every pair by Wilcoxon on the "
    "Backgrounds both have, Holm-adjusted over the pairs. Means carry Student t intervals "
    "over Backgrounds. Backgrounds that miss a system are counted and stated."
)


@dataclass(frozen=True)
class SystemLabels:
    """Each item's block (its Background's key) and system (its source)."""

    item_block: Mapping[str, str] = field(default_factory=dict)
    item_system: Mapping[str, str] = field(default_factory=dict)


def system_order(names: Sequence[str]) -> list[str]:
    """Systems sorted by name, the reference last (differences read "system - reference")."""
    unique = sorted(set(names))
    return [n for n in unique if n != REFERENCE_SYSTEM] + (
        [REFERENCE_SYSTEM] if REFERENCE_SYSTEM in unique else []
    )


def compare_table_systems(
    table: RatingsTable,
    labels: SystemLabels,
    alternative: Alternative = "two-sided",
    zero_method: ZeroMethod = "wilcox",
    confidence: float = 0.95,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> SystemsReport | None:
    """The system comparison of a study's ratings; None when the rated items have one system.

    Items without a block are a block of their own; items without a system are grouped as
    "(no source)".
    """
    system = {i: labels.item_system.get(i) or UNLABELLED for i in table.items}
    if len(set(system.values())) < 2:
        return None
    block = {i: labels.item_block.get(i) or f"item:{i}" for i in table.items}
    data = block_means_from_ratings(
        table, block, system, system_order(list(system.values())), combine=True
    )
    return compare_systems(data, alternative, zero_method, confidence, n_permutations, seed)


def _f(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def _p_eq(p: float | None) -> str:
    text = _p(p)
    return text if text.startswith("<") else f"= {text}"


def _pair_phrase(p: PairwiseComparison, significance: float) -> str:
    adjusted = p.p_value_holm if p.p_value_holm is not None else p.wilcoxon.p_value
    numbers = (
        f"mean {_f(p.mean_a)} vs {_f(p.mean_b)} on {p.n_blocks} shared Backgrounds, "
        f"median difference {_f(p.median_difference)}, W = {_f(p.wilcoxon.statistic, 1)}, "
        f"p {_p_eq(p.wilcoxon.p_value)}"
    )
    if adjusted is not None and adjusted < significance and p.wilcoxon.rank_biserial != 0:
        better, worse = (
            (p.system_a, p.system_b) if p.wilcoxon.rank_biserial > 0 else (p.system_b, p.system_a)
        )
        return f"{better} rated higher than {worse} ({numbers})"
    return f"no significant difference between {p.system_a} and {p.system_b} ({numbers})"


def system_conclusions(report: SystemsReport, significance: float = 0.05) -> list[str]:
    """One sentence per target and criterion on how the systems compare."""
    out: list[str] = []
    for c in report.comparisons:
        cell = f"{c.target.capitalize()} {c.criterion}"
        if c.test == "wilcoxon" and c.pairwise:
            out.append(f"{cell}: {_pair_phrase(c.pairwise[0], significance)}.")
        elif c.test == "friedman" and c.friedman is not None:
            fr = c.friedman
            head = (
                f"Friedman chi-squared = {_f(fr.statistic)}, df = {fr.df}, p {_p_eq(fr.p_value)}, "
                f"Kendall's W = {_f(fr.kendall_w)}, {fr.n_blocks} complete Backgrounds"
            )
            differing = [
                _pair_phrase(p, significance)
                for p in c.pairwise
                if p.p_value_holm is not None and p.p_value_holm < significance
            ]
            if fr.p_value < significance:
                pairs = "; ".join(differing) if differing else "no pair differs after Holm"
                out.append(f"{cell}: the {len(c.systems)} systems differ ({head}); {pairs}.")
            else:
                out.append(
                    f"{cell}: no significant difference among the {len(c.systems)} systems "
                    f"({head})."
                )
    return out


def system_warnings(report: SystemsReport) -> list[str]:
    """The notes of each cell (incomplete blocks, systems without data), named by cell."""
    return [f"Systems, {c.target} {c.criterion}: {n}." for c in report.comparisons for n in c.notes]


def _summary_line(c: SystemComparison) -> list[str]:
    lines = []
    for s in c.summaries:
        ci = f"[{_f(s.ci_low)}, {_f(s.ci_high)}]"
        rank = _f(s.mean_rank) if s.mean_rank is not None else ""
        lines.append(f"    {s.system:<28}{s.n_blocks:>7}{_f(s.mean):>8}{ci:>16}{rank:>8}")
    return lines


def systems_text(report: SystemsReport) -> list[str]:
    """Lines of the text report's system section."""
    lines = [
        f"Systems on shared Backgrounds ({len(report.systems)} systems: "
        f"{', '.join(report.systems)}; {report.n_blocks} Backgrounds)"
    ]
    for c in report.comparisons:
        cov = c.coverage
        lines.append(
            f"  {c.target} {c.criterion}: {cov.n_complete} of {cov.n_blocks} Backgrounds have "
            f"every system"
        )
        lines.append(f"    {'system':<28}{'Bgs':>7}{'mean':>8}{'95% CI':>16}{'rank':>8}")
        lines += _summary_line(c)
        if c.friedman is not None:
            fr = c.friedman
            lines.append(
                f"    Friedman chi2 = {_f(fr.statistic, 3)}, df = {fr.df}, p = {_p(fr.p_value)}, "
                f"Kendall's W = {_f(fr.kendall_w, 3)} (n = {fr.n_blocks})"
            )
        for p in c.pairwise:
            w, hl = p.wilcoxon, p.hodges_lehmann
            holm = f", Holm p = {_p(p.p_value_holm)}" if len(c.pairwise) > 1 else ""
            lines.append(
                f"    {p.system_a} - {p.system_b}: n = {p.n_blocks}, mean d = "
                f"{_f(p.mean_difference)}, W = {_f(w.statistic, 1)}, p = {_p(w.p_value)}{holm}, "
                f"r_rb = {_f(w.rank_biserial)}, HL = {_f(hl.estimate)} "
                f"[{_f(hl.ci_low)}, {_f(hl.ci_high)}] ({w.method})"
            )
        lines += [f"    note: {n}" for n in c.notes]
    lines.append("  Question vs answer within each system (Wilcoxon on item means, Holm)")
    for qa in report.question_vs_answer:
        for pc in qa.comparisons:
            lines.append(
                f"    {qa.system:<28}{pc.criterion:<14}n = {pc.n_items:<5} question "
                f"{_f(pc.question_mean)} answer {_f(pc.answer_mean)}, p = "
                f"{_p(pc.wilcoxon.p_value)}, Holm p = {_p(pc.p_value_holm)}"
            )
        if qa.skipped:
            lines.append(f"    {qa.system}: no item with both targets on {', '.join(qa.skipped)}")
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) or math.isinf(value) else repr(value)
    return str(value)


def systems_csv_rows(report: SystemsReport) -> list[list[str]]:
    """Tidy rows ``section,target,criterion,rater,statistic,value`` of the system comparison.

    The ``rater`` column names the system (section ``system``), the pair "a vs b" (section
    ``system_pair``) or the system of a question-vs-answer test (``system_question_answer``).
    """
    rows: list[list[str]] = []
    for c in report.comparisons:
        t, k = c.target, c.criterion
        cov = c.coverage
        for key in ("n_blocks", "n_complete", "n_incomplete", "n_single"):
            rows.append(["system_test", t, k, "", key, _cell(getattr(cov, key))])
        rows.append(["system_test", t, k, "", "test", c.test])
        if c.friedman is not None:
            fr = c.friedman
            rows += [
                ["system_test", t, k, "", "friedman_statistic", _cell(fr.statistic)],
                ["system_test", t, k, "", "friedman_df", _cell(fr.df)],
                ["system_test", t, k, "", "friedman_p_value", _cell(fr.p_value)],
                ["system_test", t, k, "", "kendall_w", _cell(fr.kendall_w)],
                ["system_test", t, k, "", "friedman_n_blocks", _cell(fr.n_blocks)],
            ]
        for s in c.summaries:
            for key in ("n_blocks", "mean", "sd", "ci_low", "ci_high", "mean_rank"):
                rows.append(["system", t, k, s.system, key, _cell(getattr(s, key))])
        for p in c.pairwise:
            name = f"{p.system_a} vs {p.system_b}"
            values = {
                "n_blocks": p.n_blocks,
                "mean_a": p.mean_a,
                "mean_b": p.mean_b,
                "mean_difference": p.mean_difference,
                "median_difference": p.median_difference,
                "statistic": p.wilcoxon.statistic,
                "p_value": p.wilcoxon.p_value,
                "p_value_holm": p.p_value_holm,
                "rank_biserial": p.wilcoxon.rank_biserial,
                "hodges_lehmann": p.hodges_lehmann.estimate,
                "hodges_lehmann_ci_low": p.hodges_lehmann.ci_low,
                "hodges_lehmann_ci_high": p.hodges_lehmann.ci_high,
                "method": p.wilcoxon.method,
            }
            rows += [["system_pair", t, k, name, key, _cell(v)] for key, v in values.items()]
    for qa in report.question_vs_answer:
        for pc in qa.comparisons:
            values = {
                "n_items": pc.n_items,
                "question_mean": pc.question_mean,
                "answer_mean": pc.answer_mean,
                "statistic": pc.wilcoxon.statistic,
                "p_value": pc.wilcoxon.p_value,
                "p_value_holm": pc.p_value_holm,
                "rank_biserial": pc.wilcoxon.rank_biserial,
            }
            rows += [
                ["system_question_answer", "", pc.criterion, qa.system, key, _cell(v)]
                for key, v in values.items()
            ]
    return rows
