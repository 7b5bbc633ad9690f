"""The one login rate limiter: every login form (the site's and the admin's) goes through it.

Failures are counted in Django's cache (shared by all gunicorn workers) under two keys:
- the client address together with the username: `LOGIN_FAILURE_LIMIT` failures in
  `LOGIN_FAILURE_WINDOW_S` seconds block that pair, so one person guessing one account is
  stopped without locking out everyone else behind the same address (an office, the proxy);
- the client address alone, with the much larger `LOGIN_FAILURE_ADDRESS_LIMIT`, so one address
  cannot try one password on every account.

The client address is REMOTE_ADDR, or behind `TRUSTED_PROXY_COUNT` proxies the entry of
X-Forwarded-For that the outermost trusted proxy wrote (see `client_address`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

__all__ = [
    "AdminRateLimitedAuthenticationForm",
    "LoginRateLimiter",
    "RateLimitedAuthenticationForm",
    "client_address",
    "login_rate_limiter",
]

_PAIR = "login-fail:pair:"
_ADDRESS = "login-fail:ip:"
BLOCKED_MESSAGE = _("Too many failed attempts. Wait a few minutes and try again.")


def _address_or_none(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the one the trusted proxies saw.

    With N = TRUSTED_PROXY_COUNT proxies in front (each appends the address it was called from
    to X-Forwarded-For, as nginx's `$proxy_add_x_forwarded_for` does), the N-th entry from the
    right is the client; entries further left were sent by the client and are not trusted.
    With N = 0 (no proxy) the header is ignored: anyone could write it.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    if proxies <= 0:
        return remote
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [part for part in header.split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote  # not through the whole chain of proxies
    return _address_or_none(forwarded[-proxies]) or remote


class LoginRateLimiter:
    """Block a login after `limit` failures of one (address, username) pair in `window`
    seconds, or after `address_limit` failures from one address for any usernames."""

    def __init__(self, limit: int, window: int, address_limit: int) -> None:
        self.limit = limit
        self.window = window
        self.address_limit = address_limit

    def keys(self, request: HttpRequest, username: str) -> list[str]:
        ip = client_address(request)
        user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return [f"{_PAIR}{ip}:{user}", f"{_ADDRESS}{ip}"]

    def _limit_of(self, key: str) -> int:
        return self.address_limit if key.startswith(_ADDRESS) else self.limit

    def is_blocked(self, keys: list[str]) -> bool:
        counts = cache.get_many(keys)
        return any(int(counts.get(key, 0)) >= self._limit_of(key) for key in keys)

    def hit(self, keys: list[str]) -> None:
        for key in keys:
            if cache.add(key, 1, self.window):
                continue
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, self.window)

    def reset(self, keys: list[str]) -> None:
        # Only the pair: a success must not wipe an address's record of guessing other accounts.
        cache.delete_many([key for key in keys if key.startswith(_PAIR)])


login_rate_limiter = LoginRateLimiter(
    limit=getattr(settings, "LOGIN_FAILURE_LIMIT", 5),
    window=getattr(settings, "LOGIN_FAILURE_WINDOW_S", 300),
    address_limit=getattr(settings, "LOGIN_FAILURE_ADDRESS_LIMIT", 50),
)


class RateLimitedAuthenticationForm(AuthenticationForm):
    """Django's login form, refused while the limiter blocks this address and username.

    A blocked attempt never checks the password, so even the right one fails; the view answers
    429 (it sees `request.login_rate_limited`). The message is the same whether the account
    exists or not.
    """

    def clean(self) -> dict[str, Any]:
        request = self.request
        assert request is not None  # LoginView and the admin always pass the request
        keys = login_rate_limiter.keys(request, str(self.data.get("username", "")))
        if login_rate_limiter.is_blocked(keys):
            request.login_rate_limited = True  # type: ignore[attr-defined]
            raise forms.ValidationError(BLOCKED_MESSAGE, code="rate_limited")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_rate_limiter.hit(keys)
            raise
        login_rate_limiter.reset(keys)
        return cleaned


class AdminRateLimitedAuthenticationForm(RateLimitedAuthenticationForm, AdminAuthenticationForm):
    """The admin's login form (staff only) behind the same limiter."""
