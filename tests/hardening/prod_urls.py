"""The site's URLs plus two failing pages, for prod_probe (never part of the real site)."""

from __future__ import annotations

import os

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from tests.hardening.prod_probe import TRACEBACK_MARKER


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(f"{TRACEBACK_MARKER} {os.environ.get('SECRET_KEY')}")


def db_gone(request: HttpRequest) -> HttpResponse:
    raise OperationalError(f"{TRACEBACK_MARKER}: server closed the connection unexpectedly")


urlpatterns = [
    path("probe/boom/", boom),
    path("probe/db-gone/", db_gone),
    path("", include("convgen_site.urls")),
]
