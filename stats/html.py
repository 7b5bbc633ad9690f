"""HTML rendering of a :class:`~stats.report.Report` (Django templates; shared by views and the
command)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from stats.plots import diverging_bars, paired_plot, system_means_plot
from stats.report import ALPHA_ACCEPTABLE, ALPHA_TENTATIVE, Report, format_p

__all__ = ["render_report_html", "report_context"]


def _f(x: float | None, digits: int = 2) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _level(alpha: float) -> str:
    if math.isnan(alpha):
        return "undefined"
    if alpha >= ALPHA_ACCEPTABLE:
        return "good"
    if alpha >= ALPHA_TENTATIVE:
        return "tentative"
    return "low"


def report_context(report: Report, scale_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Template context: preformatted tables and the inline SVG plots.

    The SVG strings are built by :mod:`stats.plots`, which escapes every text it embeds, so
    they are marked safe here; everything else goes through Django's autoescaping.
    """
    comparisons = []
    for c in report.comparisons:
        w, hl = c.wilcoxon, c.hodges_lehmann
        comparisons.append(
            {
                "criterion": c.criterion,
                "n_items": c.n_items,
                "question_mean": _f(c.question_mean),
                "answer_mean": _f(c.answer_mean),
                "median_difference": _f(c.median_difference),
                "statistic": _f(w.statistic, 1),
                "p_value": format_p(w.p_value),
                "p_value_holm": format_p(c.p_value_holm),
                "rank_biserial": _f(w.rank_biserial),
                "hodges_lehmann": f"{_f(hl.estimate)} [{_f(hl.ci_low)}, {_f(hl.ci_high)}]",
                "permutation_p_value": format_p(c.permutation.p_value),
                "method": f"{w.method}, {w.alternative}, zeros: {w.zero_method}",
            }
        )
    agreement = []
    for row in report.agreement:
        r = row.result
        agreement.append(
            {
                "target": row.target,
                "criterion": row.criterion,
                "n_items": r.n_items,
                "n_raters": r.n_raters,
                "alpha_ordinal": _f(r.alpha_ordinal, 3),
                "alpha_ci": f"[{_f(r.alpha_ordinal_ci.low)}, {_f(r.alpha_ordinal_ci.high)}]",
                "alpha_interval": _f(r.alpha_interval, 3),
                "alpha_nominal": _f(r.alpha_nominal, 3),
                "fleiss": _f(r.fleiss.kappa, 3) if r.fleiss.kappa is not None else "n/a",
                "fleiss_reason": r.fleiss.reason or "",
                "gwet_ac2": _f(r.gwet_ac2.coefficient, 3),
                "gwet_ac1": _f(r.gwet_ac1.coefficient, 3),
                "percent_agreement": _f(r.percent_agreement * 100, 1),
                "level": _level(r.alpha_ordinal),
            }
        )
    raters = [
        {
            "rater": r.rater,
            "n_ratings": r.n_ratings,
            "mad": _f(r.mean_absolute_deviation),
            "bias": _f(r.mean_difference),
            "spearman": _f(r.spearman),
            "outlier": r.outlier,
            "reasons": "; ".join(r.reasons),
        }
        for r in report.raters
    ]
    plots: list[tuple[str, SafeString]] = [
        (p.criterion, mark_safe(paired_plot(p, report.scale)))  # escaped in stats.plots
        for p in report.item_pairs
        if p.items
    ]
    bars = mark_safe(diverging_bars(report.distributions, report.scale, scale_labels))
    return {
        "systems": _systems_context(report),
        "report": report,
        "comparisons": comparisons,
        "agreement": agreement,
        "raters": raters,
        "outliers": [r for r in raters if r["outlier"]],
        "bars_svg": bars,
        "paired_svgs": plots,
    }


def render_report_html(
    report: Report,
    scale_labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> str:
    """A standalone HTML page (inline CSS, no external assets) for ``--format html``."""
    context = report_context(report, scale_labels)
    context["title"] = title or f"Ratings report: {report.source}"
    return render_to_string("stats/report_standalone.html", context)


def _systems_context(report: Report) -> dict[str, Any] | None:
    """The system comparison's tables and plot, or None without several systems."""
    rep = report.systems
    if rep is None:
        return None
    cells = []
    for c in rep.comparisons:
        test = ""
        if c.friedman is not None:
            fr = c.friedman
            test = (
                f"Friedman χ² = {_f(fr.statistic, 3)}, df = {fr.df}, p = {format_p(fr.p_value)}, "
                f"Kendall's W = {_f(fr.kendall_w, 3)}, n = {fr.n_blocks}"
            )
        cells.append(
            {
                "target": c.target,
                "criterion": c.criterion,
                "test": test,
                "coverage": c.coverage,
                "summaries": [
                    {
                        "system": x.system,
                        "n_blocks": x.n_blocks,
                        "mean": _f(x.mean),
                        "ci": f"[{_f(x.ci_low)}, {_f(x.ci_high)}]",
                        "rank": _f(x.mean_rank) if x.mean_rank is not None else "",
                    }
                    for x in c.summaries
                ],
                "pairs": [
                    {
                        "pair": f"{p.system_a} − {p.system_b}",
                        "n_blocks": p.n_blocks,
                        "mean_difference": _f(p.mean_difference),
                        "statistic": _f(p.wilcoxon.statistic, 1),
                        "p_value": format_p(p.wilcoxon.p_value),
                        "p_value_holm": format_p(p.p_value_holm),
                        "rank_biserial": _f(p.wilcoxon.rank_biserial),
                        "hodges_lehmann": f"{_f(p.hodges_lehmann.estimate)} "
                        f"[{_f(p.hodges_lehmann.ci_low)}, {_f(p.hodges_lehmann.ci_high)}]",
                    }
                    for p in c.pairwise
                ],
                "notes": list(c.notes),
            }
        )
    qa = [
        {
            "system": q.system,
            "criterion": pc.criterion,
            "n_items": pc.n_items,
            "question_mean": _f(pc.question_mean),
            "answer_mean": _f(pc.answer_mean),
            "p_value": format_p(pc.wilcoxon.p_value),
            "p_value_holm": format_p(pc.p_value_holm),
            "rank_biserial": _f(pc.wilcoxon.rank_biserial),
        }
        for q in rep.question_vs_answer
        for pc in q.comparisons
    ]
    return {
        "report": rep,
        "svg": mark_safe(system_means_plot(rep, report.scale)),  # escaped in stats.plots
        "cells": cells,
        "question_vs_answer": qa,
    }
