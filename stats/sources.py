"""Ratings of a study from the database, as a validated :class:`~stats.ratings.RatingsTable`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stats.ratings import RatingsTable, Scale, ratings_from_rows
from stats.system_report import SystemLabels

__all__ = ["StudyNotFound", "StudyRatings", "study_ratings"]


class StudyNotFound(LookupError):
    """No study with that slug."""


@dataclass(frozen=True)
class StudyRatings:
    """A study's ratings plus what the report needs to show about the study."""

    slug: str
    title: str
    table: RatingsTable
    scale_labels: dict[str, str] = field(default_factory=dict)
    labels: SystemLabels = field(default_factory=SystemLabels)  # items' Background and source


def study_ratings(slug: str) -> StudyRatings:
    """Completed ratings of a study, attention-check items excluded.

    Rows are (rater username, item external_id, target, criterion, score). Only completed
    assignments count: a leased assignment may hold autosaved, unfinished scores.

    Raises
    ------
    StudyNotFound
        Unknown slug.
    RatingsError
        No completed ratings yet, or ratings that fail validation (e.g. off the scale).
    """
    # Imported here so that the statistics core and the CSV path work without the annotation
    # app installed.
    from django.contrib.auth import get_user_model

    from annotation.models import Item, Rating, Study

    study = Study.objects.filter(slug=slug).first()
    if study is None:
        raise StudyNotFound(f"no study with slug {slug!r}")
    username = get_user_model().USERNAME_FIELD
    rows: Any = (
        Rating.objects.filter(
            assignment__item__study=study,
            assignment__item__is_attention_check=False,
            assignment__status="completed",
        )
        .order_by("assignment__item_id", "assignment_id", "target", "criterion")
        .values_list(
            f"assignment__rater__{username}",
            "assignment__item__external_id",
            "target",
            "criterion",
            "score",
        )
    )
    source = f"study {study.slug}"
    table = ratings_from_rows(
        list(rows.iterator(chunk_size=5000)),
        Scale(study.scale_min, study.scale_max),
        source=source,
        require_both_targets=False,
    )
    labels = study.scale_labels if isinstance(study.scale_labels, dict) else {}
    item_block: dict[str, str] = {}
    item_system: dict[str, str] = {}
    items = Item.objects.filter(study=study, is_attention_check=False)
    for external_id, block, system in items.values_list("external_id", "block", "source"):
        item_block[external_id] = block
        item_system[external_id] = system
    return StudyRatings(
        study.slug,
        study.title,
        table,
        {str(k): str(v) for k, v in labels.items()},
        SystemLabels(item_block, item_system),
    )
