"""Creating a study with its items, and the studies a user is offered."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from annotation.items import ItemRow, block_key
from annotation.models import SCALE_PRESETS, Item, Study, default_criteria, random_seed
from convgen_site.roles import is_researcher

__all__ = ["StudySpec", "create_study", "studies_for"]


@dataclass(frozen=True)
class StudySpec:
    """Everything a study needs besides its items; defaults are the pilot study's."""

    title: str
    slug: str
    instructions: str = ""
    scale: str = "1-3"
    scale_labels: dict[str, str] | None = None
    criteria: list[dict[str, str]] | None = None
    raters_per_item: int = 3
    items_per_rater: int = 0
    lease_seconds: int = 1800
    seed: int | None = None
    one_background_per_rater: bool = False


def create_study(spec: StudySpec, rows: Iterable[ItemRow], created_by: User | None = None) -> Study:
    """Create the study and its items (shuffled once with the study's seed) in one transaction."""
    rows = list(rows)
    if not rows:
        raise ValidationError({"items": "a study needs at least one item"})
    ids = [row.external_id for row in rows]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValidationError({"items": f"item ids repeat across sources: {', '.join(dupes)}"})
    if spec.scale_labels is not None:
        labels = dict(spec.scale_labels)
    elif spec.scale in SCALE_PRESETS:
        labels = dict(SCALE_PRESETS[spec.scale])
    else:
        raise ValidationError({"scale": f"unknown scale {spec.scale!r}; use 1-3 or 1-5"})
    points = sorted(int(p) for p in labels)
    study = Study(
        slug=spec.slug,
        title=spec.title,
        instructions=spec.instructions,
        scale_min=points[0],
        scale_max=points[-1],
        scale_labels=labels,
        criteria=spec.criteria or default_criteria(),
        raters_per_item=spec.raters_per_item,
        items_per_rater=spec.items_per_rater,
        lease_seconds=spec.lease_seconds,
        seed=spec.seed if spec.seed is not None else random_seed(),
        one_background_per_rater=spec.one_background_per_rater,
        created_by=created_by if created_by is not None and created_by.pk else None,
    )
    study.full_clean()
    ranks = list(range(len(rows)))
    random.Random(study.seed).shuffle(ranks)
    with transaction.atomic():
        study.save()
        Item.objects.bulk_create(
            [
                Item(
                    study=study,
                    external_id=row.external_id,
                    background=row.background,
                    question=row.question,
                    answer=row.answer,
                    source=row.source,
                    # Attention checks go to every rater, so they belong to no block.
                    block="" if row.is_attention_check else row.block or block_key(row.background),
                    conversation_id=row.conversation_id,
                    rank=rank,
                    is_attention_check=row.is_attention_check,
                    expected_scores=row.expected_scores,
                )
                for row, rank in zip(rows, ranks, strict=True)
            ],
            batch_size=1000,
        )
    return study


def studies_for(user: User) -> Any:
    """Open studies offered to a rater (all studies for a researcher)."""
    if is_researcher(user):
        return Study.objects.all()
    return Study.objects.filter(is_open=True).filter(Q(raters=None) | Q(raters=user)).distinct()
