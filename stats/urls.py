"""URLs of the statistics app (included under ``stats/`` with namespace "stats")."""

from django.urls import path

from stats import views

app_name = "stats"
urlpatterns = [
    path("studies/<slug:slug>/report/", views.study_report, name="study_report"),
    path("studies/<slug:slug>/report.json", views.study_report_json, name="study_report_json"),
    path("studies/<slug:slug>/report.csv", views.study_report_csv, name="study_report_csv"),
    path("report/from-csv/", views.report_from_csv, name="report_from_csv"),
]
