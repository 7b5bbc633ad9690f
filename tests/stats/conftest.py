"""Fixtures of the statistics tests: a small synthetic rating design and a study in the DB."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

from stats.ratings import RatingsTable, Scale, ratings_from_rows

Row = tuple[str, str, str, str, int]
_PILOT_CANDIDATES = [
    Path(os.environ.get("CONVGEN_PILOT_DIR", "")),  # wherever a researcher keeps the files
    Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "pilot-study",
    Path("/work/shared/reference/pilot-study"),  # the team's machines (a clone may sit elsewhere)
]
# The pilot study's real ratings are not committed (they are the study's, not ours).
PILOT_DIR = next(
    (p for p in _PILOT_CANDIDATES if str(p) != "." and (p / "ratings.csv").is_file()),
    _PILOT_CANDIDATES[1],
)


def synthetic_rows(
    n_items: int = 30, n_raters: int = 4, shift: float = 1.0, noise: float = 0.4, seed: int = 0
) -> list[Row]:
    """Questions about ``shift`` points better than answers on a 1-5 scale; raters agree well."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for i in range(n_items):
        base = rng.uniform(1.5, 3.5)
        for r in range(n_raters):
            for crit in ("correctness", "creativity"):
                for target, extra in (("question", shift), ("answer", 0.0)):
                    score = int(np.clip(round(base + extra + rng.normal(0, noise)), 1, 5))
                    rows.append((f"rater{r}", f"item{i}", target, crit, score))
    return rows


def write_csv(path: Path, rows: Iterable[Row]) -> Path:
    lines = ["rater,item,target,criterion,score"] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def synthetic_table() -> RatingsTable:
    return ratings_from_rows(synthetic_rows(), Scale(1, 5))


@pytest.fixture
def make_study(db: None) -> Callable[..., object]:
    """Create a study with completed assignments holding the given rating rows."""
    pytest.importorskip("annotation.models")
    from annotation.models import Assignment, Item, Rating, Study
    from tests.factories import UserFactory

    def make(
        rows: Iterable[Row],
        slug: str = "demo",
        scale: tuple[int, int] = (1, 5),
        attention_rows: Iterable[Row] = (),
        status: str = "completed",
    ) -> object:
        study = Study.objects.create(
            slug=slug, title=f"Study {slug}", scale_min=scale[0], scale_max=scale[1]
        )
        assignments: dict[tuple[str, str], Assignment] = {}
        for rows_, attention in ((rows, False), (attention_rows, True)):
            for rater, item_id, target, criterion, score in rows_:
                item, _ = Item.objects.get_or_create(
                    study=study, external_id=item_id, defaults={"is_attention_check": attention}
                )
                key = (rater, item_id)
                if key not in assignments:
                    assignments[key] = Assignment.objects.create(
                        item=item,
                        rater=UserFactory(username=rater),  # type: ignore[misc]
                        status=status,
                    )
                Rating.objects.create(
                    assignment=assignments[key], target=target, criterion=criterion, score=score
                )
        return study

    return make
