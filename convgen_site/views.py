"""Site-wide views: the role-aware home page, login and a health check."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render

from convgen_site.ratelimit import RateLimitedAuthenticationForm
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


def answer_429_when_rate_limited(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """429 Too Many Requests when the login form was refused by the limiter."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if getattr(request, "login_rate_limited", False):
            response.status_code = 429
        return response

    return wrapper


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login behind the one login limiter (`convgen_site.ratelimit`)."""

    authentication_form = RateLimitedAuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["rate_limited"] = getattr(self.request, "login_rate_limited", False)
        return context


login = answer_429_when_rate_limited(RateLimitedLoginView.as_view())
