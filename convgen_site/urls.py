"""Root URL configuration: the site on top puts the apps' pages together.

The download on a generation run's page keeps its place among modeling's URLs
(`modeling:generation_export`) but is the annotation app's view, since it filters by ratings;
modeling itself never refers to annotation.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotation import views as annotation_views
from convgen_site import views
from convgen_site.ratelimit import AdminRateLimitedAuthenticationForm
from modeling import urls as modeling_urls

admin.site.login_form = AdminRateLimitedAuthenticationForm  # one login limiter for every login

modeling_pages = [
    *modeling_urls.urlpatterns,
    path(
        "runs/generation/<int:pk>/export/",
        annotation_views.generation_export,
        name="generation_export",
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz/", views.healthz, name="healthz"),
    path("accounts/login/", views.login, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The admin's login goes through the same limiter (its form) and answers 429 when blocked.
    path("admin/login/", views.answer_429_when_rate_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar (served here, no CDN); its setup script is a file of
    # its own (the split view), so the Content-Security-Policy needs no inline script for it.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("annotation.api_urls")),
    path("annotation/", include("annotation.urls")),
    path("modeling/", include((modeling_pages, modeling_urls.app_name))),
    path("stats/", include("stats.urls")),
]
