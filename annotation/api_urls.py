"""/api/ routes of the annotation app (the schema lives at /api/schema/)."""

from rest_framework.routers import DefaultRouter

from annotation.api import AssignmentViewSet, StudyViewSet

router = DefaultRouter()
router.register("studies", StudyViewSet, basename="study")
router.register("assignments", AssignmentViewSet, basename="assignment")

urlpatterns = router.urls
