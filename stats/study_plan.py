"""The study planner on a finished study's ratings: variance components, then
:func:`stats.planning.plan_study`, and the plan in words (Django-free).

Two differences can be planned for:

* ``question-answer``: the study's own comparison, question - answer of one criterion on item
  means; the item and rater variance of the per-rater differences come from
  :func:`stats.planning.estimate_variance_components`.
* ``systems``: two systems compared on one target and criterion, matched by Background. From
  the scores of that target and criterion, a one-way random-effects ANOVA gives the item
  variance s_u^2 (between Backgrounds' items) and the rater variance s_e^2. Two systems' items
  on one Background are taken as independent draws, so the per-Background difference of item
  means over k raters has variance 2 s_u^2 + 2 s_e^2 / k: the planner gets item variance
  2 s_u^2 and rater variance 2 s_e^2. A shared Background makes the two items alike, which only
  lowers this variance, so the plan errs on the safe side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from stats.paired import Alternative
from stats.planning import (
    DEFAULT_ITEMS,
    DEFAULT_RATERS,
    Model,
    StudyPlan,
    VarianceComponents,
    estimate_variance_components,
    plan_study,
    variance_components_of,
)
from stats.ratings import TARGETS, RatingsTable

__all__ = [
    "DIFFERENCES",
    "PlanResult",
    "plan_from_table",
    "plan_sentence",
    "plan_text",
    "score_components",
]

Difference = Literal["question-answer", "systems"]
DIFFERENCES: tuple[Difference, ...] = ("question-answer", "systems")


@dataclass(frozen=True)
class PlanResult:
    """What was planned for, the variances it rests on and the simulated plan."""

    difference: str
    target: str  # "" for question-answer
    criterion: str
    components: VarianceComponents
    item_variance: float  # of the difference the planner simulates
    rater_variance: float
    assumption: str
    plan: StudyPlan

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["components"] = self.components.to_dict()
        out["plan"] = self.plan.to_dict()
        return out


def score_components(table: RatingsTable, target: str, criterion: str) -> VarianceComponents:
    """Item and rater variance of the scores of one target and criterion (items as groups)."""
    if criterion not in table.criteria:
        raise ValueError(f"no ratings of criterion {criterion!r}")
    mask = table.cell(target, criterion)
    if not mask.any():
        raise ValueError(f"no {target} ratings of {criterion!r}")
    item = table.item[mask]
    score = table.score[mask].astype(np.float64)
    components = variance_components_of(
        criterion,
        item,
        score,
        f"one-way random-effects ANOVA (method of moments) on the {target} scores, items as groups",
    )
    if math.isnan(components.item_variance) or math.isnan(components.rater_variance):
        raise ValueError(
            f"cannot estimate the variances of {target} {criterion}: needs two or more items "
            "and an item rated more than once"
        )
    return components


def plan_from_table(
    table: RatingsTable,
    criterion: str,
    delta: float,
    difference: Difference = "question-answer",
    target: str = "answer",
    items: Sequence[int] = DEFAULT_ITEMS,
    raters: Sequence[int] = DEFAULT_RATERS,
    power: float = 0.80,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    n_simulations: int = 1000,
    seed: int = 0,
    model: Model = "normal",
) -> PlanResult:
    """Estimate the variances from ``table`` and simulate the power over the grid.

    Raises ``ValueError`` for an unknown criterion or target, or ratings that cannot give the
    variances.
    """
    if difference not in DIFFERENCES:
        raise ValueError(f"difference must be one of {', '.join(DIFFERENCES)}")
    if delta == 0 or not math.isfinite(delta):
        raise ValueError("delta must be a non-zero number of scale points")
    if difference == "question-answer":
        comp = estimate_variance_components(table, criterion)
        if math.isnan(comp.item_variance) or math.isnan(comp.rater_variance):
            raise ValueError(
                f"cannot estimate the variances of question - answer on {criterion}: needs two "
                "or more items and an item rated by more than one rater"
            )
        item_var, rater_var = comp.item_variance, comp.rater_variance
        target = ""
        assumption = (
            "Per-rater differences question - answer: d = delta + item effect + rater noise; "
            "an item mean over k raters has variance item + rater / k."
        )
    else:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}")
        comp = score_components(table, target, criterion)
        item_var, rater_var = 2.0 * comp.item_variance, 2.0 * comp.rater_variance
        assumption = (
            f"Two systems on shared Backgrounds, {target} {criterion}: the per-Background "
            "difference of item means over k raters has variance 2 item + 2 rater / k (the "
            "systems' items taken as independent; a shared Background only lowers it)."
        )
    plan = plan_study(
        delta, item_var, rater_var, items, raters, power, alpha, alternative,
        n_simulations, seed, model,
    )  # fmt: skip
    return PlanResult(difference, target, criterion, comp, item_var, rater_var, assumption, plan)


def _what(result: PlanResult) -> str:
    if result.difference == "systems":
        return f"{result.target} {result.criterion} between two systems"
    return f"{result.criterion} between questions and answers"


def plan_sentence(result: PlanResult) -> str:
    """One sentence: the smallest design that reaches the asked power, or that none does."""
    plan = result.plan
    head = (
        f"To detect a {abs(plan.delta):g}-point difference in {_what(result)} with "
        f"{plan.target_power:.0%} power at alpha = {plan.alpha:g} ({plan.alternative}), "
    )
    rec = plan.recommended
    if rec is None:
        return (
            head + f"no design of the grid is enough (up to {max(plan.items)} items x "
            f"{max(plan.raters)} raters per item reach {max(g.power for g in plan.grid):.0%})."
        )
    unit = "Backgrounds rated for each system" if result.difference == "systems" else "items"
    total = rec.n_assignments * (2 if result.difference == "systems" else 1)
    return (
        head + f"you need {rec.n_items} {unit} with {rec.n_raters} "
        f"rater{'s' if rec.n_raters != 1 else ''} per item ({total} rating sets; simulated power "
        f"{rec.power:.3f} +- {rec.mc_se:.3f})."
    )


def plan_text(result: PlanResult) -> str:
    """The plan for a terminal: variances, assumption, power grid, smallest designs."""
    plan, comp = result.plan, result.components
    lines = [
        plan_sentence(result),
        "",
        f"Variance components ({comp.method}; {comp.n_items} items, "
        f"{comp.mean_raters_per_item:.1f} ratings per item):",
        f"  item variance {comp.item_variance:.4f}, rater variance {comp.rater_variance:.4f}"
        + (
            f", mean difference {comp.mean_difference:+.3f}"
            if result.difference == "question-answer"
            else f", mean score {comp.mean_difference:.3f}"
        ),
        f"  simulated: item {result.item_variance:.4f}, rater {result.rater_variance:.4f}. "
        + result.assumption,
        "",
        f"Power by items (rows) x raters per item (columns); {plan.method}:",
        "  " + f"{'items':>7}" + "".join(f"{k:>7}" for k in plan.raters),
    ]
    for n in plan.items:
        lines.append("  " + f"{n:>7}" + "".join(f"{plan.power(n, k):>7.2f}" for k in plan.raters))
    lines += ["", f"Fewest items reaching {plan.target_power:.0%} (Noether's closed form):"]
    noether = dict(plan.noether_items)
    for k, fewest in plan.smallest_items:
        shown = str(fewest) if fewest is not None else f"> {max(plan.items)}"
        closed = noether.get(k, math.nan)
        closed_text = f"{math.ceil(closed)}" if math.isfinite(closed) else "n/a"
        lines.append(f"  {k:>2} raters per item: {shown:>6} items  (Noether {closed_text})")
    return "\n".join(lines) + "\n"
