"""API shapes. Rater serializers carry only what raters may see: no source, id or model name."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study
from annotation.ratings_format import TARGETS


class ScaleSerializer(serializers.Serializer):
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))


class CriterionSerializer(serializers.Serializer):
    target = serializers.ChoiceField(choices=TARGETS)
    criterion = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    current = serializers.IntegerField()
    total = serializers.IntegerField()


class StudySerializer(serializers.ModelSerializer):
    """A study as a rater sees it."""

    scale = serializers.SerializerMethodField()
    criteria = CriterionSerializer(many=True)

    class Meta:
        model = Study
        fields = ["slug", "title", "instructions", "scale", "criteria", "is_open"]

    @extend_schema_field(ScaleSerializer)
    def get_scale(self, study: Study) -> dict[str, Any]:
        return {"min": study.scale_min, "max": study.scale_max, "labels": study.scale_labels}


class ResearcherStudySerializer(StudySerializer):
    class Meta(StudySerializer.Meta):
        fields = [
            *StudySerializer.Meta.fields,
            "raters_per_item",
            "items_per_rater",
            "lease_seconds",
            "seed",
            "created_at",
        ]


class BlindItemSerializer(serializers.Serializer):
    """The three texts of an item, nothing else."""

    background = serializers.CharField()
    question = serializers.CharField()
    answer = serializers.CharField()


class RatingSerializer(serializers.Serializer):
    # Plain serializers on the raters' hot path: no per-request model introspection.
    target = serializers.CharField(read_only=True)
    criterion = serializers.CharField(read_only=True)
    score = serializers.IntegerField(read_only=True)


class RaterAssignmentSerializer(serializers.Serializer):
    """A rater's assignment with the item's texts (blind) and their current scores."""

    id = serializers.IntegerField(read_only=True)
    study = serializers.CharField(source="item.study.slug", read_only=True)
    status = serializers.ChoiceField(choices=AssignmentStatus.choices, read_only=True)
    leased_until = serializers.DateTimeField(read_only=True, allow_null=True)
    item = serializers.SerializerMethodField()
    ratings = RatingSerializer(many=True, read_only=True)

    @extend_schema_field(BlindItemSerializer)
    def get_item(self, assignment: Assignment) -> dict[str, str]:
        item = assignment.item
        return {"background": item.background, "question": item.question, "answer": item.answer}


class NextAssignmentSerializer(RaterAssignmentSerializer):
    """A freshly leased or resumed assignment: open assignments hold no ratings yet."""

    progress = serializers.SerializerMethodField()
    ratings = serializers.SerializerMethodField()  # type: ignore[assignment]

    @extend_schema_field(RatingSerializer(many=True))
    def get_ratings(self, assignment: Assignment) -> list[dict[str, Any]]:
        if assignment.status in ("leased", "pending"):
            return []  # by construction; spares a query on the hot path
        return list(RatingSerializer(assignment.ratings.all(), many=True).data)

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, assignment: Assignment) -> dict[str, int] | None:
        progress = self.context.get("progress")
        if progress is None:
            return None
        return {"done": progress.done, "current": progress.current, "total": progress.total}


class StrictCharField(serializers.CharField):
    """A string and nothing else: 5 or true is refused, not turned into "5" (as the schema says).

    NUL characters are refused as by every CharField (PostgreSQL cannot store them).
    """

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


SUBMISSION_KEY_MAX = 64  # Assignment.submission_key


class RatingInputSerializer(serializers.Serializer):
    target = StrictCharField(max_length=20)
    criterion = StrictCharField(max_length=100)
    score = serializers.IntegerField()


class SubmitSerializer(serializers.Serializer):
    """One full rating set for an assignment."""

    ratings = RatingInputSerializer(many=True, allow_empty=False)
    time_spent_ms = serializers.IntegerField(
        required=False, min_value=0, max_value=7 * 24 * 3600 * 1000, allow_null=True
    )
    submission_key = StrictCharField(
        required=False, allow_blank=True, max_length=SUBMISSION_KEY_MAX
    )


class IdempotencyKeySerializer(serializers.Serializer):
    """The Idempotency-Key header, checked like `submission_key`."""

    key = StrictCharField(allow_blank=True, max_length=SUBMISSION_KEY_MAX)


class ReasonSerializer(serializers.Serializer):
    """Flag: the reason is optional ("broken item" when empty)."""

    reason = StrictCharField(required=False, allow_blank=True, max_length=500, default="")


class SkipSerializer(serializers.Serializer):
    """Skip: a reason is required (blank or only spaces is refused)."""

    reason = StrictCharField(
        max_length=500,
        error_messages={
            "required": "Please say why you skip this item.",
            "blank": "Please say why you skip this item.",
        },
    )


class ErrorSerializer(serializers.Serializer):
    """An error answer: what went wrong."""

    detail = serializers.CharField()


class ItemSerializer(serializers.ModelSerializer):
    """An item as researchers see it, source included."""

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "background",
            "question",
            "answer",
            "source",
            "conversation",
            "is_attention_check",
            "expected_scores",
            "completed_count",
            "leased_count",
        ]


class AssignmentSerializer(serializers.ModelSerializer):
    """An assignment as researchers see it."""

    rater = serializers.CharField(source="rater.get_username", read_only=True)
    item = serializers.CharField(source="item.external_id", read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "item",
            "rater",
            "position",
            "status",
            "leased_until",
            "started_at",
            "completed_at",
            "time_spent_ms",
            "skip_reason",
            "flag_reason",
        ]


class ResearcherRatingSerializer(serializers.ModelSerializer):
    rater = serializers.CharField(source="assignment.rater.get_username", read_only=True)
    item = serializers.CharField(source="assignment.item.external_id", read_only=True)
    source = serializers.CharField(  # type: ignore[assignment]
        source="assignment.item.source", read_only=True
    )
    assignment = serializers.IntegerField(source="assignment_id", read_only=True)

    class Meta:
        model = Rating
        fields = ["assignment", "rater", "item", "source", "target", "criterion", "score"]
