"""Pages of the annotation app: study list, rater pages, researcher pages, exports."""

from django.urls import path

from annotation import views

app_name = "annotation"
urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("new/", views.study_create, name="study_create"),
    path("<slug:slug>/", views.study_detail, name="study_detail"),
    path("<slug:slug>/toggle/", views.study_toggle, name="study_toggle"),
    path("<slug:slug>/export.<str:fmt>", views.study_export, name="study_export"),
    path("<slug:slug>/rate/", views.rate_next, name="rate_next"),
    path("<slug:slug>/rate/<int:assignment_id>/", views.rate, name="rate"),
]
