"""Root URL configuration: the site on top puts the apps' pages together.

The download on a generation run's page keeps its place among modeling's URLs
(`modeling:generation_export`) but is the annotation app's view, since it filters by ratings;
modeling itself never refers to annotation.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation import views as annotation_views
from convgen_site import views
from modeling import urls as modeling_urls

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
    path("accounts/login/", views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("annotation.api_urls")),
    path("annotation/", include("annotation.urls")),
    path("modeling/", include((modeling_pages, modeling_urls.app_name))),
    path("stats/", include("stats.urls")),
]
