"""Assemble the significance + agreement report from validated ratings (Django-free).

:func:`build_report` turns a :class:`~stats.ratings.RatingsTable` into a frozen
:class:`Report`; ``to_json_dict``, ``to_csv`` and ``to_text`` serialise it. The JSON keys of
``comparisons`` and ``agreement`` are a contract researchers script against: add keys, never
rename or drop them.

About 540 lines in one module: the report's schema and its serialisations change together.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from annotation.ratings_format import SpreadsheetSafeWriter
from stats.agreement import AgreementResult, RaterAgreement, agreement_summary, rater_agreement
from stats.paired import Alternative, PairedComparison, ZeroMethod, holm, paired_comparison
from stats.ratings import TARGETS, RatingsTable, Scale
from stats.system_report import (
    SYSTEM_METHOD_NOTE,
    SystemLabels,
    compare_table_systems,
    system_conclusions,
    system_warnings,
    systems_csv_rows,
    systems_text,
)
from stats.systems import SystemsReport

__all__ = [
    "ALPHA_ACCEPTABLE",
    "ALPHA_TENTATIVE",
    "METHOD_NOTES",
    "AgreementRow",
    "Distribution",
    "ItemPairs",
    "Report",
    "ReportSettings",
    "build_report",
    "format_p",
    "to_csv",
    "to_json_dict",
    "to_text",
]

# Krippendorff (2004, p. 241): rely on alpha >= .800; alpha >= .667 only for tentative
# conclusions.
ALPHA_ACCEPTABLE = 0.8
ALPHA_TENTATIVE = 0.667

METHOD_NOTES = (
    "Unit of analysis: the item. Each item's scores are averaged per target (question, "
    "answer) over its raters, and the tests run on the per-item differences question - "
    "answer. Testing individual ratings would count several raters' scores of one item as "
    "independent observations (pseudo-replication) and overstate the evidence.",
    "Wilcoxon signed-rank test (scipy.stats.wilcoxon): exact null distribution for up to 50 "
    "items without ties or zero differences, all 2^n sign flips for up to 13 items with ties, "
    "else the normal approximation with tie correction and no continuity correction. "
    "Zero differences are dropped by default (zero_method 'wilcox', as in R's wilcox.test).",
    "Effect size: matched-pairs rank-biserial correlation r = (R+ - R-) / (R+ + R-) "
    "(Kerby 2014); +1 means every item's question beat its answer. Hodges-Lehmann estimate: "
    "median of all Walsh averages of the differences, with the signed-rank confidence "
    "interval (Hollander & Wolfe 2014, sec. 3.3).",
    "Holm's step-down correction adjusts the p-values across criteria.",
    "Robustness check: a sign-flip permutation test of the mean difference (exact for up to "
    "20 non-zero differences, else 10,000 seeded random flips with p = (b + 1) / (m + 1)).",
    "Agreement is computed on individual ratings, per target and criterion. Krippendorff's "
    "alpha handles missing ratings; its 95% interval is a percentile bootstrap over items "
    "(units resampled with replacement, alpha recomputed exactly). Fleiss' kappa needs the "
    "same number of ratings per item. Gwet's AC2 uses linear weights "
    "(1 - |k - l| / (max - min)); AC1 is the unweighted version. Percent agreement is the "
    "share of agreeing rater pairs per item, averaged over items.",
    "Alpha >= 0.800 is Krippendorff's standard for relying on data; 0.667 <= alpha < 0.800 "
    "allows tentative conclusions only.",
)

_ADJECTIVES = {
    "correctness": "more correct",
    "creativity": "more creative",
    "fluency": "more fluent",
    "relevance": "more relevant",
    "helpfulness": "more helpful",
    "clarity": "clearer",
    "naturalness": "more natural",
}


@dataclass(frozen=True)
class ReportSettings:
    """Choices that change the numbers; all of them are printed in the report."""

    alternative: Alternative = "two-sided"
    zero_method: ZeroMethod = "wilcox"
    confidence: float = 0.95
    significance: float = 0.05
    n_bootstrap: int = 1000
    n_permutations: int = 10_000
    seed: int = 0


@dataclass(frozen=True)
class AgreementRow:
    """Agreement coefficients of one (target, criterion) cell."""

    target: str
    criterion: str
    result: AgreementResult


@dataclass(frozen=True)
class Distribution:
    """Counts of ratings on each scale point for one (target, criterion) cell."""

    target: str
    criterion: str
    counts: tuple[int, ...]


@dataclass(frozen=True)
class ItemPairs:
    """Per-item mean scores of one criterion, for the paired plot."""

    criterion: str
    items: tuple[str, ...]
    question: tuple[float, ...]
    answer: tuple[float, ...]


@dataclass(frozen=True)
class Report:
    """The whole report: what the study found and how far the raters can be trusted."""

    source: str
    n_ratings: int
    n_items: int
    n_raters: int
    scale: Scale
    settings: ReportSettings
    comparisons: tuple[PairedComparison, ...]
    agreement: tuple[AgreementRow, ...]
    raters: tuple[RaterAgreement, ...]
    distributions: tuple[Distribution, ...]
    item_pairs: tuple[ItemPairs, ...]
    conclusions: tuple[str, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = field(default=METHOD_NOTES)
    systems: SystemsReport | None = None  # items of several sources on shared Backgrounds


def format_p(p: float | None) -> str:
    """A p-value for people: "0.0123", "< 0.0001" or "n/a" (text report and HTML page)."""
    if p is None or math.isnan(p):
        return "n/a"
    if p < 0.0001:
        return "< 0.0001"
    return f"{p:.4f}"


def _p_eq(p: float | None) -> str:
    """``"= 0.0123"`` or ``"< 0.0001"``, to follow a "p"."""
    text = format_p(p)
    return text if text.startswith("<") else f"= {text}"


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _conclusion(
    c: PairedComparison, settings: ReportSettings, scale: Scale, alphas: dict[str, float]
) -> str:
    w = c.wilcoxon
    p_adj = c.p_value_holm if c.p_value_holm is not None else w.p_value
    adjective = _ADJECTIVES.get(c.criterion.lower(), f"higher on {c.criterion}")
    hl = c.hodges_lehmann
    numbers = (
        f"W = {_fmt(w.statistic, 1)}, p {_p_eq(w.p_value)} (Holm-adjusted p {_p_eq(p_adj)}), "
        f"rank-biserial r = {_fmt(w.rank_biserial)}, Hodges-Lehmann shift {_fmt(hl.estimate)} "
        f"[{round(hl.confidence * 100)}% CI {_fmt(hl.ci_low)}, {_fmt(hl.ci_high)}]; "
        f"mean {_fmt(c.question_mean)} vs {_fmt(c.answer_mean)} on the {scale} scale, "
        f"n = {c.n_items} items"
    )
    low = {t: a for t, a in alphas.items() if a < ALPHA_TENTATIVE}
    undefined = [t for t, a in alphas.items() if math.isnan(a)]
    caution = ""
    if low:
        shown = ", ".join(f"{_fmt(a, 2)} for {t}s" for t, a in low.items())
        caution = (
            f" Caution: the raters agreed poorly on {c.criterion} (ordinal alpha {shown}), "
            "so this rests on noisy ratings."
        )
    if undefined:
        caution += (
            f" Rater agreement on {c.criterion} ({' and '.join(t + 's' for t in undefined)}) "
            "could not be measured: no item was rated twice, or all scores were equal."
        )
    significant = p_adj < settings.significance
    if significant and c.mean_difference != 0:
        # The sign of R+ - R- is the direction the test saw; the mean can disagree in rare
        # skewed cases, so use the rank-based one for the wording.
        if w.rank_biserial > 0:
            return f"Questions were rated {adjective} than answers: {numbers}.{caution}"
        return f"Answers were rated {adjective} than questions: {numbers}.{caution}"
    if settings.alternative == "greater":
        claim = f"no evidence that questions were rated {adjective} than answers"
    elif settings.alternative == "less":
        claim = f"no evidence that answers were rated {adjective} than questions"
    else:
        claim = f"no significant difference between questions and answers in {c.criterion}"
    return f"{claim[0].upper()}{claim[1:]}: {numbers}.{caution}"


def _warnings(
    comparisons: list[PairedComparison], agreement: list[AgreementRow], raters: list[RaterAgreement]
) -> list[str]:
    out: list[str] = []
    for row in agreement:
        a = row.result.alpha_ordinal
        name = f"{row.target} {row.criterion}"
        if math.isnan(a):
            out.append(f"Agreement on {name} is undefined (no variation or no item rated twice).")
        elif a < ALPHA_TENTATIVE:
            out.append(
                f"Low agreement on {name}: Krippendorff's ordinal alpha = {a:.3f} < 0.667, "
                "below Krippendorff's threshold even for tentative conclusions; conclusions "
                f"about {row.criterion} rest on unreliable ratings."
            )
        elif a < ALPHA_ACCEPTABLE:
            out.append(
                f"Moderate agreement on {name}: Krippendorff's ordinal alpha = {a:.3f} "
                "(0.667 to 0.8): tentative conclusions only."
            )
    for c in comparisons:
        if c.n_items < 6:
            items = "item" if c.n_items == 1 else "items"
            out.append(
                f"Only {c.n_items} {items} for {c.criterion}: the signed-rank test cannot reach "
                "p < 0.05 two-sided with fewer than 6 pairs."
            )
        if c.wilcoxon.method == "none":
            out.append(f"Every item has a zero difference on {c.criterion}; nothing to test.")
        hl = c.hodges_lehmann
        if hl.achieved_confidence < hl.confidence - 1e-9:
            out.append(
                f"With {c.n_items} item{'' if c.n_items == 1 else 's'} the Hodges-Lehmann "
                f"interval for {c.criterion} covers "
                f"only {hl.achieved_confidence:.1%}, not {hl.confidence:.0%}."
            )
    for r in raters:
        if r.outlier:
            out.append(f"Rater {r.rater} departs from the others: {'; '.join(r.reasons)}.")
    return out


def build_report(
    table: RatingsTable,
    settings: ReportSettings | None = None,
    source: str = "ratings",
    labels: SystemLabels | None = None,
) -> Report:
    """Run every test and agreement coefficient on a validated ratings table.

    Parameters
    ----------
    table : RatingsTable
    settings : ReportSettings, optional
    source : str
        Where the ratings came from (file name or study), shown in the report.
    labels : SystemLabels, optional
        Each item's Background (block) and source (system); with two or more systems the
        report compares them (:mod:`stats.system_report`).
    """
    s = settings or ReportSettings()
    comparisons: list[PairedComparison] = []
    pairs: list[ItemPairs] = []
    skipped: list[str] = []
    for crit in table.criteria:
        names, q, a = table.item_means(crit)
        rated = np.unique(table.item[table.criterion == table.criteria.index(crit)]).size
        if rated > len(names):
            skipped.append(
                f"{rated - len(names)} of {rated} items rated on {crit} lack either question or "
                "answer ratings and are left out of the paired comparison."
            )
        if not names:
            continue
        comparisons.append(
            paired_comparison(
                crit, q, a, s.alternative, s.zero_method, s.confidence, s.n_permutations, s.seed
            )
        )
        pairs.append(ItemPairs(crit, tuple(names), tuple(q.tolist()), tuple(a.tolist())))
    adjusted = holm([c.wilcoxon.p_value for c in comparisons])
    comparisons = [replace(c, p_value_holm=p) for c, p in zip(comparisons, adjusted, strict=True)]

    agreement: list[AgreementRow] = []
    distributions: list[Distribution] = []
    for target in TARGETS:
        for crit in table.criteria:
            mask = table.cell(target, crit)
            if not mask.any():
                continue
            res = agreement_summary(
                table.item[mask],
                table.rater[mask],
                table.score[mask],
                table.scale.values,
                n_bootstrap=s.n_bootstrap,
                seed=s.seed,
            )
            agreement.append(AgreementRow(target, crit, res))
            distributions.append(
                Distribution(target, crit, tuple(int(x) for x in table.distribution(target, crit)))
            )
    raters = rater_agreement(
        table.item,
        table.rater,
        table.score,
        table.raters,
        groups=table.target * len(table.criteria) + table.criterion,
    )
    conclusions = [
        _conclusion(
            c,
            s,
            table.scale,
            {a.target: a.result.alpha_ordinal for a in agreement if a.criterion == c.criterion},
        )
        for c in comparisons
    ]
    systems = None
    if labels is not None:
        systems = compare_table_systems(
            table, labels, s.alternative, s.zero_method, s.confidence, s.n_permutations, s.seed
        )
    if systems is not None:
        conclusions += system_conclusions(systems, s.significance)
        skipped += system_warnings(systems)
    return Report(
        source=source,
        n_ratings=len(table),
        n_items=len(np.unique(table.item)),
        n_raters=len(np.unique(table.rater)),
        scale=table.scale,
        settings=s,
        comparisons=tuple(comparisons),
        agreement=tuple(agreement),
        raters=tuple(raters),
        distributions=tuple(distributions),
        item_pairs=tuple(pairs),
        conclusions=tuple(conclusions),
        warnings=tuple(skipped + _warnings(comparisons, agreement, raters)),
        notes=METHOD_NOTES + ((SYSTEM_METHOD_NOTE,) if systems is not None else ()),
        systems=systems,
    )


def _num(x: float | None) -> float | None:
    """JSON has no NaN: undefined numbers become null."""
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) or math.isinf(f) else f


def _comparison_dict(c: PairedComparison) -> dict[str, Any]:
    w, hl, perm = c.wilcoxon, c.hodges_lehmann, c.permutation
    return {
        "criterion": c.criterion,
        "n_items": c.n_items,
        "question_mean": _num(c.question_mean),
        "answer_mean": _num(c.answer_mean),
        "median_difference": _num(c.median_difference),
        "statistic": _num(w.statistic),
        "p_value": _num(w.p_value),
        "p_value_holm": _num(c.p_value_holm),
        "alternative": w.alternative,
        "zero_method": w.zero_method,
        "method": w.method,
        "rank_biserial": _num(w.rank_biserial),
        "hodges_lehmann": _num(hl.estimate),
        "hodges_lehmann_ci95": [_num(hl.ci_low), _num(hl.ci_high)],
        "permutation_p_value": _num(perm.p_value),
        # Additions beyond the contract.
        "mean_difference": _num(c.mean_difference),
        "n_zero_differences": w.n_zero,
        "r_plus": _num(w.r_plus),
        "r_minus": _num(w.r_minus),
        "hodges_lehmann_confidence": hl.confidence,
        "hodges_lehmann_achieved_confidence": _num(hl.achieved_confidence),
        "hodges_lehmann_method": hl.method,
        "permutation_method": perm.method,
        "permutation_resamples": perm.n_resamples,
    }


def _agreement_dict(row: AgreementRow, settings: ReportSettings) -> dict[str, Any]:
    r = row.result
    ci = r.alpha_ordinal_ci
    return {
        "target": row.target,
        "criterion": row.criterion,
        "n_items": r.n_items,
        "n_raters": r.n_raters,
        "krippendorff_alpha_ordinal": _num(r.alpha_ordinal),
        "krippendorff_alpha_interval": _num(r.alpha_interval),
        "krippendorff_alpha_nominal": _num(r.alpha_nominal),
        "krippendorff_alpha_ordinal_ci95": [_num(ci.low), _num(ci.high)],
        "fleiss_kappa": _num(r.fleiss.kappa),
        "gwet_ac2": _num(r.gwet_ac2.coefficient),
        "percent_agreement": _num(r.percent_agreement),
        # Additions beyond the contract.
        "n_ratings": r.n_ratings,
        "krippendorff_alpha_ordinal_ci95_method": (
            f"percentile bootstrap over items, {ci.n_resamples} resamples, seed {ci.seed}"
        ),
        "fleiss_kappa_reason": r.fleiss.reason,
        "gwet_ac2_weights": r.gwet_ac2.weights,
        "gwet_ac1": _num(r.gwet_ac1.coefficient),
    }


def to_json_dict(report: Report) -> dict[str, Any]:
    """The JSON contract (plus extra keys) as plain Python data; NaN becomes None."""
    return {
        "n_ratings": report.n_ratings,
        "n_items": report.n_items,
        "n_raters": report.n_raters,
        "comparisons": [_comparison_dict(c) for c in report.comparisons],
        "agreement": [_agreement_dict(a, report.settings) for a in report.agreement],
        "source": report.source,
        "scale": [report.scale.minimum, report.scale.maximum],
        "settings": asdict(report.settings),
        "raters": [
            {
                "rater": r.rater,
                "n_ratings": r.n_ratings,
                "mean_absolute_deviation": _num(r.mean_absolute_deviation),
                "mean_difference": _num(r.mean_difference),
                "spearman": _num(r.spearman),
                "outlier": r.outlier,
                "reasons": list(r.reasons),
            }
            for r in report.raters
        ],
        "distributions": [
            {"target": d.target, "criterion": d.criterion, "counts": list(d.counts)}
            for d in report.distributions
        ],
        "conclusions": list(report.conclusions),
        "warnings": list(report.warnings),
        "methods": list(report.notes),
        # Added with the system comparison (issue 14): null unless items of several sources.
        "systems": report.systems.to_dict() if report.systems is not None else None,
    }


def to_csv(report: Report) -> str:
    """Tidy CSV: one row per number, ``section,target,criterion,rater,statistic,value``."""
    data = to_json_dict(report)
    buf = io.StringIO()
    w = SpreadsheetSafeWriter(buf, lineterminator="\n")  # no cell runs as a formula
    w.writerow(["section", "target", "criterion", "rater", "statistic", "value"])
    for key in ("n_ratings", "n_items", "n_raters"):
        w.writerow(["summary", "", "", "", key, data[key]])
    for c in data["comparisons"]:
        for key, value in c.items():
            if key == "criterion":
                continue
            if isinstance(value, list):
                w.writerow(["comparison", "", c["criterion"], "", f"{key}_low", _cell(value[0])])
                w.writerow(["comparison", "", c["criterion"], "", f"{key}_high", _cell(value[1])])
            else:
                w.writerow(["comparison", "", c["criterion"], "", key, _cell(value)])
    for a in data["agreement"]:
        for key, value in a.items():
            if key in ("target", "criterion"):
                continue
            if isinstance(value, list):
                w.writerow(
                    ["agreement", a["target"], a["criterion"], "", f"{key}_low", _cell(value[0])]
                )
                w.writerow(
                    ["agreement", a["target"], a["criterion"], "", f"{key}_high", _cell(value[1])]
                )
            else:
                w.writerow(["agreement", a["target"], a["criterion"], "", key, _cell(value)])
    for r in data["raters"]:
        for key in (
            "n_ratings",
            "mean_absolute_deviation",
            "mean_difference",
            "spearman",
            "outlier",
        ):
            w.writerow(["rater", "", "", r["rater"], key, _cell(r[key])])
    if report.systems is not None:
        for row in systems_csv_rows(report.systems):
            w.writerow(row)
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_text(report: Report) -> str:
    """Plain-text report for the terminal."""
    lines = [
        f"Ratings report: {report.source}",
        f"{report.n_ratings} ratings of {report.n_items} items by {report.n_raters} raters, "
        f"scale {report.scale}",
        "",
        "Conclusions",
    ]
    lines += [f"  - {c}" for c in report.conclusions]
    if report.warnings:
        lines += ["", "Warnings"] + [f"  ! {w}" for w in report.warnings]
    lines += ["", "Question vs answer (per-item means, Wilcoxon signed-rank)"]
    head = (
        f"  {'criterion':<14}{'n':>5}{'question':>10}{'answer':>9}{'median d':>10}{'W':>10}"
        f"{'p':>10}{'p Holm':>10}{'r_rb':>7}{'HL [95% CI]':>24}{'perm p':>10}  method"
    )
    lines.append(head)
    for c in report.comparisons:
        w, hl = c.wilcoxon, c.hodges_lehmann
        ci = f"{_fmt(hl.estimate)} [{_fmt(hl.ci_low)}, {_fmt(hl.ci_high)}]"
        lines.append(
            f"  {c.criterion:<14}{c.n_items:>5}{_fmt(c.question_mean):>10}{_fmt(c.answer_mean):>9}"
            f"{_fmt(c.median_difference):>10}{_fmt(w.statistic, 1):>10}{format_p(w.p_value):>10}"
            f"{format_p(c.p_value_holm):>10}{_fmt(w.rank_biserial):>7}{ci:>24}"
            f"{format_p(c.permutation.p_value):>10}  {w.method}, {w.alternative}, {w.zero_method}"
        )
    if report.systems is not None:
        lines += ["", *systems_text(report.systems)]
    lines += ["", "Agreement (individual ratings)"]
    lines.append(
        f"  {'target':<10}{'criterion':<14}{'items':>6}{'raters':>7}{'a ord':>7}"
        f"{'95% CI':>17}{'a int':>7}{'a nom':>7}{'Fleiss':>8}{'AC2':>7}{'% agree':>9}"
    )
    for row in report.agreement:
        r = row.result
        ci = f"[{_fmt(r.alpha_ordinal_ci.low)}, {_fmt(r.alpha_ordinal_ci.high)}]"
        fk = _fmt(r.fleiss.kappa) if r.fleiss.kappa is not None else "n/a"
        lines.append(
            f"  {row.target:<10}{row.criterion:<14}{r.n_items:>6}{r.n_raters:>7}"
            f"{_fmt(r.alpha_ordinal, 3):>7}{ci:>17}{_fmt(r.alpha_interval, 3):>7}"
            f"{_fmt(r.alpha_nominal, 3):>7}{fk:>8}{_fmt(r.gwet_ac2.coefficient):>7}"
            f"{_fmt(r.percent_agreement * 100, 1):>9}"
        )
    fleiss_reasons = {r.result.fleiss.reason for r in report.agreement if r.result.fleiss.reason}
    for reason in sorted(fleiss_reasons):
        lines.append(f"  Fleiss' kappa n/a: {reason}.")
    lines += ["", "Raters against the leave-one-out consensus"]
    lines.append(f"  {'rater':<20}{'n':>6}{'MAD':>7}{'bias':>7}{'rho':>7}  flag")
    for ra in report.raters:
        flag = "OUTLIER: " + "; ".join(ra.reasons) if ra.outlier else ""
        lines.append(
            f"  {ra.rater:<20}{ra.n_ratings:>6}{_fmt(ra.mean_absolute_deviation):>7}"
            f"{_fmt(ra.mean_difference):>7}{_fmt(ra.spearman):>7}  {flag}"
        )
    lines += ["", "Methods"] + [f"  * {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
