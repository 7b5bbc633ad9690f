"""Rated datasets: a generation run's conversations kept only where their ratings reach a minimum.

The annotation app adds this to modeling's export (`modeling.export`): the mean ratings of each
conversation, the thresholds a researcher sets, and the studies that rate a run (shown on the
run's page through the `run_ratings` template tag).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db.models import Avg

from annotation.models import Rating, Study
from annotation.ratings_format import TARGETS
from modeling.export import ExportError
from modeling.models import Conversation, GenerationRun

__all__ = [
    "DEFAULT_CRITERIA",
    "RATED_TARGETS",
    "criteria_of",
    "means_by_record",
    "parse_min_ratings",
    "passes",
    "rating_filter",
    "rating_means",
    "studies_of",
]

DEFAULT_CRITERIA = ("correctness", "creativity")
# Whose ratings count for a threshold; "both" needs the question and the answer to pass.
RATED_TARGETS: dict[str, tuple[str, ...]] = {t: (t,) for t in TARGETS} | {"both": TARGETS}


def parse_min_ratings(values: Sequence[str]) -> dict[str, float]:
    """`correctness=2.5` -> {"correctness": 2.5}; ExportError naming anything else."""
    out: dict[str, float] = {}
    for raw in values:
        name, sep, value = raw.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ExportError(f"{raw!r}: expected CRITERION=NUMBER") from None
    return out


def rating_means(
    record_ids: Iterable[str] | None, run: GenerationRun | None, criteria: Iterable[str]
) -> dict[tuple[str, str, str], float]:
    """{(record_id, target, criterion): mean score} over completed, non-attention-check items.

    `record_ids=None` means every conversation of `run`.
    """
    convs = Conversation.objects.all()
    if record_ids is not None:
        convs = convs.filter(record_id__in=list(record_ids))
    if run is not None:
        convs = convs.filter(run=run)
    rows = (
        Rating.objects.filter(
            assignment__item__conversation__in=convs,
            assignment__item__is_attention_check=False,
            criterion__in=list(criteria),
        )
        .values("assignment__item__conversation__record_id", "target", "criterion")
        .annotate(mean=Avg("score"))
    )
    return {
        (r["assignment__item__conversation__record_id"], r["target"], r["criterion"]): float(
            r["mean"]
        )
        for r in rows
    }


def means_by_record(
    means: Mapping[tuple[str, str, str], float],
) -> dict[str, dict[tuple[str, str], float]]:
    """{record_id: {(target, criterion): mean}}."""
    out: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for (rid, target, criterion), mean in means.items():
        out[rid][(target, criterion)] = mean
    return dict(out)


def passes(
    got: Mapping[tuple[str, str], float], thresholds: Mapping[str, float], target: str
) -> bool:
    """Every threshold is met for every target; an unrated pair cannot show that it passes."""
    return all(
        got.get((t, c), float("-inf")) >= v
        for c, v in thresholds.items()
        for t in RATED_TARGETS[target]
    )


def rating_filter(
    thresholds: Mapping[str, float],
    target: str,
    means: Mapping[tuple[str, str, str], float],
) -> Callable[[dict[str, Any]], bool] | None:
    """`keep` for `modeling.export.select_records`: None (keep all) without thresholds."""
    if target not in RATED_TARGETS:
        raise ExportError(f"target {target!r}: expected one of {', '.join(RATED_TARGETS)}")
    if not thresholds:
        return None
    by_record = means_by_record(means)
    return lambda record: passes(by_record.get(record["id"], {}), thresholds, target)


def studies_of(run: GenerationRun) -> list[Study]:
    """Rating studies whose items come from this run."""
    return list(Study.objects.filter(items__conversation__run=run).distinct().order_by("pk"))


def criteria_of(studies: Iterable[Study]) -> list[str]:
    """Criterion names rated in these studies (the default pair when there is none)."""
    names: list[str] = []
    for study in studies:
        for c in study.criteria or []:
            name = str(c.get("criterion", "")) if isinstance(c, dict) else ""
            if name and name not in names:
                names.append(name)
    return names or list(DEFAULT_CRITERIA)
