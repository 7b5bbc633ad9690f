"""What the researcher watches: progress per rater and item, attention checks, speeders."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from annotation.models import Assignment, AssignmentStatus, Rating, Study, expected_key

__all__ = [
    "AttentionFailure",
    "RaterProgress",
    "Speeder",
    "StudyOverview",
    "attention_check_failures",
    "flagged_assignments",
    "item_progress",
    "overview",
    "rater_progress",
    "speeder_threshold_ms",
    "speeders",
]

SPEEDER_MIN_MS = 3000
SPEEDER_FRACTION_OF_MEDIAN = 0.2


@dataclass(frozen=True)
class RaterProgress:
    """One rater's state in one study."""

    rater: str
    completed: int
    in_progress: int
    skipped: int
    flagged: int
    expired: int
    median_seconds: float | None
    attention_failures: int
    speedy: int


@dataclass(frozen=True)
class AttentionFailure:
    rater: str
    item: str
    target: str
    criterion: str
    expected: int
    given: int


@dataclass(frozen=True)
class Speeder:
    rater: str
    item: str
    seconds: float


@dataclass(frozen=True)
class StudyOverview:
    """Study-wide counts for the researcher's page."""

    items: int
    attention_checks: int
    items_complete: int
    ratings_completed: int
    in_progress: int
    skipped: int
    flagged: int
    median_seconds: float | None
    speeder_threshold_seconds: float


def _completed_times(study: Study) -> list[int]:
    times = Assignment.objects.filter(
        item__study=study, status=AssignmentStatus.COMPLETED, time_spent_ms__isnull=False
    ).values_list("time_spent_ms", flat=True)
    return [int(ms) for ms in times if ms is not None]


def speeder_threshold_ms(study: Study) -> float:
    """Faster than this is suspicious: under 3 s, or under 20% of the study's median time."""
    times = _completed_times(study)
    median = statistics.median(times) if times else 0
    return max(SPEEDER_MIN_MS, SPEEDER_FRACTION_OF_MEDIAN * median)


def speeders(study: Study) -> list[Speeder]:
    threshold = speeder_threshold_ms(study)
    username_field = get_user_model().USERNAME_FIELD
    rows = (
        Assignment.objects.filter(
            item__study=study, status=AssignmentStatus.COMPLETED, time_spent_ms__lt=threshold
        )
        .order_by("time_spent_ms")
        .values_list(f"rater__{username_field}", "item__external_id", "time_spent_ms")
    )
    return [Speeder(r, i, ms / 1000) for r, i, ms in rows]


def attention_check_failures(study: Study) -> list[AttentionFailure]:
    username_field = get_user_model().USERNAME_FIELD
    failures = []
    ratings = (
        Rating.objects.filter(
            assignment__item__study=study,
            assignment__item__is_attention_check=True,
            assignment__status=AssignmentStatus.COMPLETED,
        )
        .select_related("assignment__item", "assignment__rater")
        .order_by("assignment_id", "target", "criterion")
    )
    for rating in ratings:
        item = rating.assignment.item
        want = (item.expected_scores or {}).get(expected_key(rating.target, rating.criterion))
        if want is not None and int(want) != rating.score:
            failures.append(
                AttentionFailure(
                    rater=getattr(rating.assignment.rater, username_field),
                    item=item.external_id,
                    target=rating.target,
                    criterion=rating.criterion,
                    expected=int(want),
                    given=rating.score,
                )
            )
    return failures


def rater_progress(study: Study) -> list[RaterProgress]:
    username_field = get_user_model().USERNAME_FIELD
    rows = (
        Assignment.objects.filter(item__study=study)
        .values(f"rater__{username_field}")
        .annotate(
            completed=Count("pk", filter=Q(status=AssignmentStatus.COMPLETED)),
            in_progress=Count("pk", filter=Q(status=AssignmentStatus.LEASED)),
            skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
            flagged=Count("pk", filter=Q(status=AssignmentStatus.FLAGGED)),
            expired=Count("pk", filter=Q(status=AssignmentStatus.EXPIRED)),
        )
        .order_by(f"rater__{username_field}")
    )
    times: dict[str, list[int]] = defaultdict(list)
    for name, ms in Assignment.objects.filter(
        item__study=study, status=AssignmentStatus.COMPLETED, time_spent_ms__isnull=False
    ).values_list(f"rater__{username_field}", "time_spent_ms"):
        times[name].append(ms)
    failures: dict[str, set[str]] = defaultdict(set)
    for failure in attention_check_failures(study):
        failures[failure.rater].add(failure.item)
    speedy: dict[str, int] = defaultdict(int)
    for speeder in speeders(study):
        speedy[speeder.rater] += 1
    result = []
    for row in rows:
        name = row[f"rater__{username_field}"]
        result.append(
            RaterProgress(
                rater=name,
                completed=row["completed"],
                in_progress=row["in_progress"],
                skipped=row["skipped"],
                flagged=row["flagged"],
                expired=row["expired"],
                median_seconds=statistics.median(times[name]) / 1000 if times[name] else None,
                attention_failures=len(failures[name]),
                speedy=speedy[name],
            )
        )
    return result


def item_progress(study: Study) -> Any:
    """Items with their counters and skip/flag counts, least covered first (a queryset)."""
    return (
        study.items.annotate(
            skipped=Count("assignments", filter=Q(assignments__status=AssignmentStatus.SKIPPED)),
            flagged=Count("assignments", filter=Q(assignments__status=AssignmentStatus.FLAGGED)),
        )
        .order_by("completed_count", "rank")
        .only("external_id", "source", "completed_count", "leased_count", "is_attention_check")
    )


def flagged_assignments(study: Study) -> Any:
    return (
        Assignment.objects.filter(
            item__study=study, status__in=[AssignmentStatus.FLAGGED, AssignmentStatus.SKIPPED]
        )
        .select_related("item", "rater")
        .order_by("-id")
    )


def overview(study: Study) -> StudyOverview:
    items = study.items.aggregate(
        total=Count("pk"),
        checks=Count("pk", filter=Q(is_attention_check=True)),
        complete=Count(
            "pk",
            filter=Q(is_attention_check=False, completed_count__gte=study.raters_per_item),
        ),
    )
    statuses = dict(
        Assignment.objects.filter(item__study=study)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    times = _completed_times(study)
    return StudyOverview(
        items=items["total"],
        attention_checks=items["checks"],
        items_complete=items["complete"],
        ratings_completed=statuses.get(AssignmentStatus.COMPLETED, 0),
        in_progress=statuses.get(AssignmentStatus.LEASED, 0),
        skipped=statuses.get(AssignmentStatus.SKIPPED, 0),
        flagged=statuses.get(AssignmentStatus.FLAGGED, 0),
        median_seconds=statistics.median(times) / 1000 if times else None,
        speeder_threshold_seconds=speeder_threshold_ms(study) / 1000,
    )
