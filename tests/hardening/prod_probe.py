"""Run as `python -m tests.hardening.prod_probe` with the production environment (DEBUG=0, ...).

Prints, as JSON, what a browser gets from a few pages: status, headers, cookies and body, plus
pages that fail (a view raising an exception, a lost database). Used by test_production.py.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import django

TRACEBACK_MARKER = "SECRET-MARKER-FROM-AN-EXCEPTION"
URLCONF = "tests.hardening.prod_urls"  # the site plus two pages that fail


def _describe(response: Any) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "cookies": {
            name: {"secure": bool(c["secure"]), "httponly": bool(c["httponly"])}
            for name, c in response.cookies.items()
        },
        "body": response.content.decode(errors="replace")[:20000],
    }


def main() -> None:
    django.setup()
    from django.conf import settings
    from django.test import Client, override_settings

    host = settings.ALLOWED_HOSTS[0]
    # No collectstatic here: pages may name static files without the production manifest.
    storages = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # fmt: skip
    with override_settings(ROOT_URLCONF=URLCONF, STORAGES=storages):
        client = Client(HTTP_HOST=host, raise_request_exception=False)
        pages = {
            "http_login": client.get("/accounts/login/"),
            "login": client.get("/accounts/login/", secure=True),
            "missing": client.get("/no/such/page/", secure=True),
            "api_missing": client.get("/api/no-such-thing/", secure=True),
            "api_anonymous": client.get("/api/studies/", secure=True),
            "boom": client.get("/probe/boom/", secure=True),
            "db_gone": client.get("/probe/db-gone/", secure=True),
            "db_gone_api": client.get(
                "/probe/db-gone/", secure=True, HTTP_ACCEPT="application/json"
            ),
        }
        result = {
            "debug": settings.DEBUG,
            "secret_key": settings.SECRET_KEY,
            "pages": {name: _describe(r) for name, r in pages.items()},
        }
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
