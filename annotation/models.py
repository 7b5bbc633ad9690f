"""Blind rating studies: Study, Item, Assignment (one rater x one item) and Rating.

The field names are a contract shared with the stats report and the dataset export.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from annotation.ratings_format import TARGETS

# Marked for translation here because labels are stored as data but the defaults are ours.
_DEFAULT_WORDS = (
    gettext_noop("needs improvement"),
    gettext_noop("fair"),
    gettext_noop("good"),
    gettext_noop("poor"),
    gettext_noop("very poor"),
    gettext_noop("very good"),
    gettext_noop("correctness"),
    gettext_noop("creativity"),
    gettext_noop("question"),
    gettext_noop("answer"),
)

SCALE_PRESETS: dict[str, dict[str, str]] = {
    "1-3": {"1": "needs improvement", "2": "fair", "3": "good"},
    "1-5": {"1": "very poor", "2": "poor", "3": "fair", "4": "good", "5": "very good"},
}


def default_scale_labels() -> dict[str, str]:
    return dict(SCALE_PRESETS["1-3"])


def default_criteria() -> list[dict[str, str]]:
    """Correctness and creativity, each for the question and for the answer (the pilot's four)."""
    return [
        {"target": target, "criterion": criterion}
        for target in TARGETS
        for criterion in ("correctness", "creativity")
    ]


def random_seed() -> int:
    return secrets.randbelow(2**31)


class Study(models.Model):
    """A blind rating study: what raters see, the scale, the criteria and raters per item (k)."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    scale_min = models.IntegerField(default=1)
    scale_max = models.IntegerField(default=3)
    scale_labels = models.JSONField(
        default=default_scale_labels, blank=True, help_text='{"1": "needs improvement", ...}'
    )
    criteria = models.JSONField(
        default=default_criteria, help_text='[{"target": "question", "criterion": "correctness"}]'
    )
    raters_per_item = models.PositiveSmallIntegerField(default=3, help_text="k")
    items_per_rater = models.PositiveIntegerField(
        default=0, help_text="most items one rater is given; 0 = no limit"
    )
    seed = models.BigIntegerField(default=random_seed, help_text="seeds every rater's order")
    lease_seconds = models.PositiveIntegerField(
        default=1800, help_text="an untouched assignment is given to someone else after this"
    )
    one_background_per_rater = models.BooleanField(
        default=False,
        help_text="no rater is given two items of the same Background (block), so nobody sees "
        "two systems' versions side by side; each Background then needs k raters per system",
    )
    is_open = models.BooleanField(default=True)
    raters = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="annotation_studies",
        help_text="who may rate; empty = every rater",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scale_max__gt=models.F("scale_min")), name="scale_has_two_points"
            ),
            models.CheckConstraint(condition=models.Q(raters_per_item__gte=1), name="k_at_least_1"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def scale_points(self) -> list[tuple[int, str]]:
        """(value, label) for every point of the scale, low to high."""
        labels = self.scale_labels or {}
        return [
            (value, str(labels.get(str(value), "")))
            for value in range(self.scale_min, self.scale_max + 1)
        ]

    @property
    def criteria_keys(self) -> list[tuple[str, str]]:
        return [(str(c["target"]), str(c["criterion"])) for c in self.criteria]

    def clean(self) -> None:
        if self.scale_max <= self.scale_min:
            raise ValidationError({"scale_max": _("The scale needs at least two points.")})
        if not isinstance(self.criteria, list) or not self.criteria:
            raise ValidationError({"criteria": _("At least one criterion is needed.")})
        seen: set[tuple[str, str]] = set()
        for entry in self.criteria:
            if not isinstance(entry, dict) or entry.get("target") not in TARGETS:
                raise ValidationError(
                    {"criteria": _("Each criterion needs a target: question or answer.")}
                )
            if not str(entry.get("criterion", "")).strip():
                raise ValidationError({"criteria": _("Each criterion needs a name.")})
            key = (entry["target"], entry["criterion"])
            if key in seen:
                raise ValidationError({"criteria": _("Criteria must not repeat.")})
            seen.add(key)
        if not isinstance(self.scale_labels, dict):
            raise ValidationError({"scale_labels": _("Labels must map scale points to text.")})


class Item(models.Model):
    """One thing to rate: a Background with a generated (or reference) question and answer."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    background = models.TextField(blank=True)
    question = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    source = models.CharField(
        max_length=200, blank=True, help_text="model or 'reference'; never shown to raters"
    )
    block = models.CharField(
        max_length=64,
        blank=True,
        help_text="the Background's key (hash of its cleaned text): items of different systems "
        "on one Background form a block; never shown to raters",
    )
    conversation = models.ForeignKey(
        "modeling.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotation_items",
    )
    rank = models.PositiveIntegerField(
        default=0, help_text="place in the study's seeded shuffle; each rater permutes it"
    )
    is_attention_check = models.BooleanField(
        default=False, help_text="shown to every rater, not counted against k"
    )
    expected_scores = models.JSONField(
        default=dict, blank=True, help_text='attention checks: {"answer:correctness": 1}'
    )
    completed_count = models.PositiveIntegerField(default=0)
    leased_count = models.PositiveIntegerField(
        default=0, help_text="assignments holding a slot but not yet completed"
    )

    class Meta:
        ordering = ["study", "rank", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="unique_item_per_study"),
        ]
        indexes = [
            models.Index(fields=["study", "rank"], name="item_study_rank"),
            models.Index(fields=["study", "block"], name="item_study_block"),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}/{self.external_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Items added one by one (admin) go after the shuffled ones; raters still permute ranks.
        if self._state.adding and not self.rank and self.study_id:
            top = Item.objects.filter(study_id=self.study_id).aggregate(top=models.Max("rank"))
            if top["top"] is not None:
                self.rank = top["top"] + 1
        super().save(*args, **kwargs)


class AssignmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    LEASED = "leased", _("In progress")
    COMPLETED = "completed", _("Completed")
    SKIPPED = "skipped", _("Skipped")
    FLAGGED = "flagged", _("Flagged")
    EXPIRED = "expired", _("Expired")


# Statuses that hold one of the item's k slots.
SLOT_HOLDING = (AssignmentStatus.LEASED, AssignmentStatus.COMPLETED)


class Assignment(models.Model):
    """One rater's work on one item; at most one per (item, rater)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotation_assignments"
    )
    position = models.BigIntegerField(
        default=0, help_text="the item's place in this rater's seeded order"
    )
    status = models.CharField(
        max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.PENDING
    )
    leased_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)
    flag_reason = models.CharField(max_length=500, blank=True)
    submission_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "rater"], name="one_assignment_per_rater_item"),
        ]
        indexes = [
            models.Index(fields=["rater", "status"], name="assignment_rater_status"),
            models.Index(fields=["status", "leased_until"], name="assignment_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.item} by {self.rater_id} ({self.status})"

    @property
    def is_lease_expired(self) -> bool:
        return bool(
            self.status == AssignmentStatus.LEASED
            and self.leased_until is not None
            and self.leased_until < timezone.now()
        )


class Rating(models.Model):
    """One score for one (target, criterion) of one assignment."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="ratings")
    target = models.CharField(max_length=20)
    criterion = models.CharField(max_length=100)
    score = models.IntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["assignment", "target", "criterion"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "target", "criterion"], name="one_score_per_criterion"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target}/{self.criterion}={self.score}"


def expected_key(target: str, criterion: str) -> str:
    """Key of an attention check's expected score: 'answer:correctness'."""
    return f"{target}:{criterion}"
