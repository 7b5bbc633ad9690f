"""REST API: raters fetch their next item and submit ratings; researchers read everything."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import allocation
from annotation.models import Assignment, AssignmentStatus, Item, Rating, Study
from annotation.serializers import (
    AssignmentSerializer,
    ErrorSerializer,
    IdempotencyKeySerializer,
    ItemSerializer,
    NextAssignmentSerializer,
    RaterAssignmentSerializer,
    ReasonSerializer,
    ResearcherRatingSerializer,
    ResearcherStudySerializer,
    SkipSerializer,
    StudySerializer,
    SubmitSerializer,
)
from annotation.studies import studies_for
from convgen_site.roles import IsRater, IsResearcher, is_researcher

ERROR_400 = OpenApiResponse(
    description="invalid input: {field: [message]} (a score off the scale, a missing criterion, "
    "a malformed body or Idempotency-Key)"
)
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="not signed in, or not allowed")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="no such object (or not yours)")
NO_SUCH_PAGE = OpenApiResponse(ErrorSerializer, description="no such page of the list")
GIVE_UP_ERRORS = {
    400: ERROR_400,
    403: OpenApiResponse(
        ErrorSerializer, description="not a rater of this study, or the study is closed"
    ),
    404: NOT_FOUND,
}


class _UserMixin:
    @property
    def user(self) -> User:
        """The signed-in user (IsRater/IsResearcher have turned anonymous users away)."""
        return cast(User, self.request.user)  # type: ignore[attr-defined]


@extend_schema_view(
    list=extend_schema(
        responses={200: StudySerializer(many=True), 403: FORBIDDEN, 404: NO_SUCH_PAGE}
    ),
    retrieve=extend_schema(responses={200: StudySerializer, 403: FORBIDDEN, 404: NOT_FOUND}),
)
class StudyViewSet(_UserMixin, viewsets.ReadOnlyModelViewSet):
    """Studies offered to the signed-in rater (all studies for researchers)."""

    lookup_field = "slug"
    permission_classes = [IsRater]

    def get_queryset(self) -> QuerySet[Study]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Study.objects.none()
        return studies_for(self.user).order_by("-created_at", "pk")

    def get_serializer_class(self) -> Any:
        if is_researcher(self.user):
            return ResearcherStudySerializer
        return StudySerializer

    def _rater_study(self) -> Study:
        study = get_object_or_404(Study, slug=self.kwargs["slug"])
        if not (allocation.may_rate(study, self.user) or is_researcher(self.user)):
            raise PermissionDenied("You are not a rater of this study.")
        return study

    @extend_schema(
        summary="The caller's next assignment (resumes an unfinished one)",
        parameters=[
            OpenApiParameter(
                "progress", bool, description="include 'item n of total' (costs one count query)"
            )
        ],
        responses={
            200: NextAssignmentSerializer,
            400: ERROR_400,
            403: OpenApiResponse(ErrorSerializer, description="not a rater of this study"),
            404: OpenApiResponse(
                ErrorSerializer,
                description="no such study, nothing left to rate, or the study is closed",
            ),
        },
    )
    @action(detail=True, methods=["get"], url_path="next")
    def next(self, request: Request, slug: str, format: str | None = None) -> Response:
        study = self._rater_study()
        try:
            assignment = allocation.next_assignment(study, self.user)
        except allocation.StudyClosed as exc:
            raise NotFound("This study is closed.") from exc
        if assignment is None:
            raise NotFound("Nothing left to rate in this study.")
        assignment.item.study = study  # already loaded: spare the serializer a query
        context = dict(self.get_serializer_context())
        if request.query_params.get("progress") in ("1", "true"):
            context["progress"] = allocation.progress(study, self.user, assignment)
        return Response(NextAssignmentSerializer(assignment, context=context).data)

    def _researcher_list(self, queryset: QuerySet[Any], serializer_class: Any) -> Response:
        if not is_researcher(self.user):
            raise PermissionDenied("Only researchers may do this.")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @extend_schema(
        summary="Items with their source (researchers)",
        responses={200: ItemSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], permission_classes=[IsResearcher])
    def items(self, request: Request, slug: str, format: str | None = None) -> Response:
        study = get_object_or_404(Study, slug=slug)
        return self._researcher_list(
            Item.objects.filter(study=study).order_by("rank"), ItemSerializer
        )

    @extend_schema(
        summary="Every rater's assignments (researchers)",
        responses={200: AssignmentSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], permission_classes=[IsResearcher])
    def assignments(self, request: Request, slug: str, format: str | None = None) -> Response:
        study = get_object_or_404(Study, slug=slug)
        queryset = (
            Assignment.objects.filter(item__study=study)
            .select_related("item", "rater")
            .order_by("pk")
        )
        return self._researcher_list(queryset, AssignmentSerializer)

    @extend_schema(
        summary="Every rating (researchers)",
        responses={200: ResearcherRatingSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], permission_classes=[IsResearcher])
    def ratings(self, request: Request, slug: str, format: str | None = None) -> Response:
        study = get_object_or_404(Study, slug=slug)
        queryset = (
            Rating.objects.filter(
                assignment__item__study=study, assignment__status=AssignmentStatus.COMPLETED
            )
            .select_related("assignment__item", "assignment__rater")
            .order_by("assignment_id", "target", "criterion")
        )
        return self._researcher_list(queryset, ResearcherRatingSerializer)


@extend_schema_view(
    retrieve=extend_schema(
        responses={200: RaterAssignmentSerializer, 403: FORBIDDEN, 404: NOT_FOUND}
    ),
)
class AssignmentViewSet(_UserMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One assignment: its owner reads and rates it; researchers may read any."""

    permission_classes = [IsRater]
    serializer_class = RaterAssignmentSerializer
    lookup_value_regex = r"\d+"  # /api/assignments/abc/ is a 404, not a failed int()
    queryset = Assignment.objects.select_related("item__study").prefetch_related("ratings")

    def get_object(self) -> Assignment:
        """The caller's own assignment under the pages' rules; researchers may read any.

        Someone else's assignment is a 404 like one that does not exist, so ids reveal nothing
        about other raters. A rater removed from the study is refused like on the pages (403).
        """
        queryset = self.get_queryset()
        if self.request.method != "GET":
            queryset = queryset.prefetch_related(None)  # writes re-read what they need
        assignment = queryset.filter(pk=self.kwargs["pk"]).first()
        if assignment is None:
            raise NotFound()
        if self.request.method == "GET" and is_researcher(self.user):
            return assignment
        if assignment.rater_id != self.request.user.pk:
            raise NotFound()
        if not allocation.may_rate(assignment.item.study, self.user):
            raise PermissionDenied("You are not a rater of this study.")
        return assignment

    @extend_schema(
        summary="Store the rating set of an assignment (idempotent)",
        description=(
            "Send every criterion of the study once. The same `submission_key` (or "
            "`Idempotency-Key` header) again returns the stored result without changes; "
            "a new key on a completed assignment replaces its scores."
        ),
        request=SubmitSerializer,
        responses={
            201: RaterAssignmentSerializer,
            200: RaterAssignmentSerializer,
            400: ERROR_400,
            403: OpenApiResponse(
                ErrorSerializer, description="not a rater of this study, or the study is closed"
            ),
            404: NOT_FOUND,
            409: OpenApiResponse(
                ErrorSerializer, description="the lease ran out and the item is full"
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="ratings")
    def submit_ratings(self, request: Request, pk: str, format: str | None = None) -> Response:
        assignment = self.get_object()
        payload = SubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        study = assignment.item.study
        try:
            scores = allocation.validate_ratings(study, [dict(r) for r in data["ratings"]])
        except ValueError as exc:
            # DRF's usual shape: {field: [message]}.
            raise ValidationError({k: [v] for k, v in exc.args[0].items()}) from exc
        key = data.get("submission_key") or ""
        if "Idempotency-Key" in request.headers:
            # The header is checked like the body's submission_key (never cut short).
            header = IdempotencyKeySerializer(data={"key": request.headers["Idempotency-Key"]})
            if not header.is_valid():
                raise ValidationError({"Idempotency-Key": header.errors["key"]})
            key = header.validated_data["key"] or key
        try:
            stored, created = allocation.submit(
                assignment,
                scores,
                time_spent_ms=data.get("time_spent_ms"),
                submission_key=key,
            )
        except allocation.LeaseLost as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except allocation.StudyClosed as exc:
            raise PermissionDenied("This study is closed.") from exc
        stored.item.study = study
        # 201 only for the one request that completed the assignment (concurrent duplicates,
        # replays and changes are 200).
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(RaterAssignmentSerializer(stored).data, status=code)

    def _give_up(self, request: Request, new_status: str, serializer: Any) -> Response:
        assignment = self.get_object()
        payload = serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reason = payload.validated_data.get("reason", "")
        try:
            stored = allocation.give_up(assignment, new_status, reason or "broken item")
        except allocation.StudyClosed as exc:
            raise PermissionDenied("This study is closed.") from exc
        stored.item.study = assignment.item.study
        return Response(RaterAssignmentSerializer(stored).data)

    @extend_schema(
        summary="Skip with a reason (required)",
        request=SkipSerializer,
        responses={200: RaterAssignmentSerializer, **GIVE_UP_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, pk: str, format: str | None = None) -> Response:
        return self._give_up(request, AssignmentStatus.SKIPPED, SkipSerializer)

    @extend_schema(
        summary="Flag a broken item (the reason is optional)",
        request=ReasonSerializer,
        responses={200: RaterAssignmentSerializer, **GIVE_UP_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def flag(self, request: Request, pk: str, format: str | None = None) -> Response:
        return self._give_up(request, AssignmentStatus.FLAGGED, ReasonSerializer)
