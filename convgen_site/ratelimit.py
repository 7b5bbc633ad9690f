"""A small fixed-window login rate limiter on Django's cache (per address and per username)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


class LoginRateLimiter:
    """Block logins after `limit` failures in `window` seconds, per client IP and per username."""

    def __init__(self, limit: int, window: int) -> None:
        self.limit = limit
        self.window = window

    def keys(self, request: HttpRequest, username: str) -> list[str]:
        ip = request.META.get("REMOTE_ADDR", "unknown")
        user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return [f"login-fail:ip:{ip}", f"login-fail:user:{user}"]

    def is_blocked(self, keys: list[str]) -> bool:
        return any(cache.get(key, 0) >= self.limit for key in keys)

    def hit(self, keys: list[str]) -> None:
        for key in keys:
            if cache.add(key, 1, self.window):
                continue
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, self.window)

    def reset(self, keys: list[str]) -> None:
        cache.delete_many(keys)


login_rate_limiter = LoginRateLimiter(
    limit=getattr(settings, "LOGIN_FAILURE_LIMIT", 5),
    window=getattr(settings, "LOGIN_FAILURE_WINDOW_S", 300),
)
