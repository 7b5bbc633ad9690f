"""Factories for studies and items (users come from tests.factories.UserFactory)."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import User

from annotation.items import ItemRow
from annotation.models import Study
from annotation.studies import StudySpec, create_study
from convgen_site.roles import RATER, add_role
from tests.factories import UserFactory


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    slug = factory.Sequence(lambda n: f"study-{n}")
    title = factory.Sequence(lambda n: f"Study {n}")
    seed = 12345


def item_rows(n: int, source: str = "llama-lora-v1", prefix: str = "it") -> list[ItemRow]:
    """n items whose texts say which item they are (the source must never reach raters)."""
    return [
        ItemRow(
            external_id=f"{prefix}-{i}",
            background=f"Background number {i} about rivers.",
            question=f"Question {i}?",
            answer=f"Answer {i}.",
            source=source,
        )
        for i in range(n)
    ]


def make_study(n_items: int = 4, k: int = 2, slug: str = "pilot", **spec: object) -> Study:
    """A study built through the same service the command and the form use."""
    return create_study(
        StudySpec(title=f"Study {slug}", slug=slug, raters_per_item=k, seed=7, **spec),  # type: ignore[arg-type]
        item_rows(n_items),
    )


def make_rater(username: str) -> User:
    user: User = UserFactory(username=username)  # type: ignore[assignment]
    add_role(user, RATER)
    return user


FULL_SET: list[dict[str, Any]] = [
    {"target": "question", "criterion": "correctness", "score": 3},
    {"target": "question", "criterion": "creativity", "score": 2},
    {"target": "answer", "criterion": "correctness", "score": 1},
    {"target": "answer", "criterion": "creativity", "score": 2},
]


def full_scores(score: int | None = None) -> dict[tuple[str, str], int]:
    return {
        (str(r["target"]), str(r["criterion"])): int(score if score is not None else r["score"])
        for r in FULL_SET
    }
