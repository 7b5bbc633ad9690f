from django.urls import path

from modeling import views, views_data, views_training

app_name = "modeling"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("datasets/new/", views_data.dataset_new, name="dataset_new"),
    path("datasets/<int:pk>/", views_data.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/status.json", views_data.dataset_status, name="dataset_status"),
    path("datasets/<int:pk>/cancel/", views_data.dataset_cancel, name="dataset_cancel"),
    path("runs/training/new/", views_training.training_new, name="training_new"),
    path("runs/training/<int:pk>/", views_training.training_detail, name="training_detail"),
    path(
        "runs/training/<int:pk>/status.json",
        views_training.training_status,
        name="training_status",
    ),
    path("runs/training/<int:pk>/cancel/", views_training.training_cancel, name="training_cancel"),
    path("runs/training/<int:pk>/resume/", views_training.training_resume, name="training_resume"),
    path("runs/generation/new/", views.generation_new, name="generation_new"),
    path("runs/generation/<int:pk>/", views.generation_detail, name="generation_detail"),
    path("runs/generation/<int:pk>/status.json", views.generation_status, name="generation_status"),
    path("runs/generation/<int:pk>/cancel/", views.generation_cancel, name="generation_cancel"),
    path("runs/generation/<int:pk>/resume/", views.generation_resume, name="generation_resume"),
    path("runs/generation/<int:pk>/export/", views.generation_export, name="generation_export"),
]
