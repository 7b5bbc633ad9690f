"""A lost database connection (restart, fail-over) answers 503 with Retry-After, not a 500.

Django drops a broken connection at the end of the request and the health check opens a fresh one
on the next, so the client's retry succeeds once the database is back. Every write a client may
retry is idempotent (ratings carry a submission_key), so retrying is always safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
MESSAGE = _(
    "The database is briefly unavailable. Please try again in a few seconds; a rating sent again "
    "is stored once."
)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("database unavailable during %s %s", request.method, request.path,
                    exc_info=exception)  # fmt: skip
        response: HttpResponse
        if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
            response = JsonResponse({"detail": str(MESSAGE)}, status=503)
        else:
            response = HttpResponse(
                f"<!doctype html><title>503 Service Unavailable</title><p>{escape(MESSAGE)}</p>",
                status=503,
            )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
