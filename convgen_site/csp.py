"""Content-Security-Policy: scripts and style blocks only from this site or with a nonce.

Each request gets a fresh nonce (`request.csp_nonce`); the few inline <script> and <style> blocks
of the templates carry it (`nonce="{{ request.csp_nonce }}"`), event-handler attributes are not
used (site.js wires the language menu), and Swagger UI is served by drf-spectacular-sidecar with
its setup script as a file. Style *attributes* stay allowed (`style-src-attr`): the SVG charts
set their width with one, and CSS cannot run code.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = policy(nonce)
        return response
