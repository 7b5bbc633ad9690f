"""URLs of the modeling app; the run page's export is added by the site (see convgen_site.urls)."""

from django.urls import path

from modeling.views import dashboard, datasets, generation, training

app_name = "modeling"
urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("datasets/new/", datasets.dataset_new, name="dataset_new"),
    path("datasets/<int:pk>/", datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/status.json", datasets.dataset_status, name="dataset_status"),
    path("datasets/<int:pk>/cancel/", datasets.dataset_cancel, name="dataset_cancel"),
    path("runs/training/new/", training.training_new, name="training_new"),
    path("runs/training/<int:pk>/", training.training_detail, name="training_detail"),
    path(
        "runs/training/<int:pk>/status.json",
        training.training_status,
        name="training_status",
    ),
    path("runs/training/<int:pk>/cancel/", training.training_cancel, name="training_cancel"),
    path("runs/training/<int:pk>/resume/", training.training_resume, name="training_resume"),
    path("runs/generation/new/", generation.generation_new, name="generation_new"),
    path("runs/generation/<int:pk>/", generation.generation_detail, name="generation_detail"),
    path(
        "runs/generation/<int:pk>/status.json",
        generation.generation_status,
        name="generation_status",
    ),
    path(
        "runs/generation/<int:pk>/cancel/", generation.generation_cancel, name="generation_cancel"
    ),
    path(
        "runs/generation/<int:pk>/resume/", generation.generation_resume, name="generation_resume"
    ),
]
