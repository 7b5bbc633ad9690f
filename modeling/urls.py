from django.urls import path

from modeling import views

app_name = "modeling"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("runs/generation/new/", views.generation_new, name="generation_new"),
    path("runs/generation/<int:pk>/", views.generation_detail, name="generation_detail"),
    path("runs/generation/<int:pk>/status.json", views.generation_status, name="generation_status"),
    path("runs/generation/<int:pk>/cancel/", views.generation_cancel, name="generation_cancel"),
    path("runs/generation/<int:pk>/resume/", views.generation_resume, name="generation_resume"),
]
