"""Site-wide views: the role-aware home page, login and a health check."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from convgen_site.ratelimit import login_rate_limiter
from convgen_site.roles import is_researcher


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if is_researcher(request.user):
        return render(request, "home_researcher.html")
    return render(request, "home_rater.html")


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login, refusing attempts from an address or for a username after failures."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        keys = login_rate_limiter.keys(request, request.POST.get("username", ""))
        if login_rate_limiter.is_blocked(keys):
            return render(
                request,
                "registration/login.html",
                {"form": self.get_form(), "rate_limited": True},
                status=429,
            )
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            login_rate_limiter.reset(keys)
        else:
            login_rate_limiter.hit(keys)
        return response
