"""Simulated raters for the demo and for load tests: seeded scores through the real allocation path.

The scores are made up, and the rater accounts say so in their names. They are drawn from a
simple ordinal model so the report has something to show: each item has a latent quality per
target, each rater a leniency, each rating some noise; the question gets `question_advantage`
more latent quality than the answer (the pilot study found questions rated higher). Every
rating goes through `allocation.next_assignment` and `allocation.submit`, so k-coverage, leases
and counters are exercised exactly as they are for people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.contrib.auth.models import User

from annotation import allocation
from annotation.models import Study
from convgen_site.roles import RATER, add_role


@dataclass(frozen=True)
class SimulationSummary:
    raters: list[str]
    rating_sets: int


def simulated_raters(prefix: str, n: int) -> list[User]:
    """Accounts `<prefix>-1..n` with the rater role and no usable password."""
    users = []
    for i in range(1, n + 1):
        user, created = User.objects.get_or_create(username=f"{prefix}-{i}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        add_role(user, RATER)
        users.append(user)
    return users


def _score(rng: random.Random, latent: float, lo: int, hi: int) -> int:
    mid = (lo + hi) / 2
    return max(lo, min(hi, round(mid + latent + rng.gauss(0.0, 0.6))))


def simulate_ratings(
    study: Study,
    raters: list[User],
    *,
    items_per_rater: int | None = None,
    question_advantage: float = 0.4,
    seed: int = 0,
) -> SimulationSummary:
    """Each rater rates up to `items_per_rater` items (None: until the study has none left)."""
    rng = random.Random(seed)
    lo, hi = study.scale_min, study.scale_max
    span = (hi - lo) / 2
    item_quality: dict[tuple[int, str], float] = {}
    sets = 0
    for rater in raters:
        leniency = rng.gauss(0.0, 0.25 * span)
        done = 0
        while items_per_rater is None or done < items_per_rater:
            assignment = allocation.next_assignment(study, rater)
            if assignment is None:
                break
            scores = {}
            for target, criterion in study.criteria_keys:
                key = (assignment.item_id, target)
                if key not in item_quality:
                    bonus = question_advantage * span if target == "question" else 0.0
                    item_quality[key] = rng.gauss(bonus, 0.4 * span)
                scores[(target, criterion)] = _score(rng, item_quality[key] + leniency, lo, hi)
            # No made-up time on item: submit ignores one longer than the wall time since the
            # item was shown, so the (near-zero) wall time is what gets stored.
            allocation.submit(assignment, scores)
            done += 1
            sets += 1
    return SimulationSummary(raters=[r.username for r in raters], rating_sets=sets)
