"""The login rate limit beyond tests/site/test_login.py: per client address and username, per
address with a larger limit, the client address behind the proxy, the admin's login, reset on
success, the window (on Redis, the production cache) and one count shared by all workers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from convgen_site.ratelimit import login_rate_limiter
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory's


def _login(
    username: str, password: str, ip: str, path: str = "/accounts/login/", **headers: str
) -> int:
    client = Client(REMOTE_ADDR=ip, **headers)  # type: ignore[arg-type]
    data = {"username": username, "password": password}
    if path.startswith("/admin/"):
        data["next"] = "/admin/"
    return client.post(path, data).status_code


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()  # the file cache of the test settings (never the shared Redis)
    yield
    cache.clear()


@pytest.mark.django_db
def test_five_failures_block_that_username_from_that_address_only() -> None:
    make_user(username="ana")
    make_user(username="bea")
    for _ in range(5):
        assert _login("ana", "wrong", "10.0.0.1") == 200
    assert _login("ana", PASSWORD, "10.0.0.1") == 429  # even the right password
    assert _login("bea", PASSWORD, "10.0.0.1") == 302  # a colleague behind the same address
    assert _login("ana", PASSWORD, "10.0.0.2") == 302  # ana herself, from elsewhere


@pytest.mark.django_db
def test_one_address_guessing_many_usernames_is_blocked_for_every_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(login_rate_limiter, "address_limit", 8)
    make_user(username="ana")
    for i in range(8):
        assert _login(f"guess{i}", "wrong", "10.0.0.3") == 200
    assert _login("ana", PASSWORD, "10.0.0.3") == 429
    assert _login("ana", PASSWORD, "10.0.0.4") == 302


@pytest.mark.django_db
def test_the_admin_login_shares_the_limiter(client: Client) -> None:
    staff = make_user(username="boss", is_staff=True)
    assert staff.is_staff
    for _ in range(5):
        assert _login("boss", "wrong", "10.0.0.5", "/admin/login/") == 200
    assert _login("boss", PASSWORD, "10.0.0.5", "/admin/login/") == 429  # right one refused
    assert _login("boss", PASSWORD, "10.0.0.5") == 429  # and the site's login too
    assert _login("boss", PASSWORD, "10.0.0.6", "/admin/login/") == 302


@pytest.mark.django_db
def test_a_locked_out_address_is_locked_out_of_the_admin_too() -> None:
    make_user(username="boss", is_staff=True)
    for _ in range(5):
        assert _login("boss", "wrong", "10.0.0.7") == 200
    assert _login("boss", PASSWORD, "10.0.0.7", "/admin/login/") == 429


@pytest.mark.django_db
def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    make_user(username="ana")
    for i in range(5):  # a client writing a new X-Forwarded-For each time gains nothing
        assert _login("ana", "wrong", "10.0.1.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}") == 200
    assert _login("ana", PASSWORD, "10.0.1.1", HTTP_X_FORWARDED_FOR="192.0.2.99") == 429


@pytest.mark.django_db
def test_behind_the_proxy_each_client_is_counted_on_its_own(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    make_user(username="ana")
    proxy = "127.0.0.1"  # every request reaches gunicorn from the proxy
    for _ in range(5):
        # The client's own X-Forwarded-For entries come first; the proxy appends the address
        # it saw, which is the one that counts.
        forwarded = "203.0.113.9, 198.51.100.7"
        assert _login("ana", "wrong", proxy, HTTP_X_FORWARDED_FOR=forwarded) == 200
    blocked = "1.2.3.4, 198.51.100.7"  # a forged first entry does not help
    assert _login("ana", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=blocked) == 429
    assert _login("ana", PASSWORD, proxy, HTTP_X_FORWARDED_FOR="198.51.100.8") == 302


@pytest.mark.django_db
def test_a_successful_login_resets_the_count() -> None:
    make_user(username="ana")
    for _ in range(2):
        for _ in range(4):
            assert _login("ana", "wrong", "10.0.0.3") == 200
        assert _login("ana", PASSWORD, "10.0.0.3") == 302


@pytest.mark.django_db
def test_the_block_does_not_say_whether_the_account_exists() -> None:
    make_user(username="ana")
    for name in ("ana", "nobody"):
        for _ in range(5):
            _login(name, "wrong", f"10.0.1.{len(name)}")
    blocked = [
        Client(REMOTE_ADDR=f"10.0.1.{len(name)}").post(
            "/accounts/login/", {"username": name, "password": "wrong"}
        )
        for name in ("ana", "nobody")
    ]
    assert [r.status_code for r in blocked] == [429, 429]
    texts = [
        re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", r.content.decode()).replace(n, "N")
        for r, n in zip(blocked, ("ana", "nobody"), strict=True)
    ]
    assert texts[0] == texts[1]


@pytest.fixture
def redis_cache() -> Iterator[dict[str, str]]:
    """The default cache on the test Redis, under a key prefix of its own (never flushed)."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("needs TEST_REDIS_URL: the production cache is Redis")
    config = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
              "KEY_PREFIX": f"hardening-{uuid.uuid4().hex}"}  # fmt: skip
    with override_settings(CACHES={"default": config}):
        yield config


@pytest.mark.django_db
def test_on_redis_the_block_ends_with_its_window(
    redis_cache: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(login_rate_limiter, "window", 1)
    make_user(username="ana")
    for _ in range(5):
        assert _login("ana", "wrong", "10.0.2.1") == 200
    assert _login("ana", PASSWORD, "10.0.2.1") == 429
    time.sleep(1.3)
    assert _login("ana", PASSWORD, "10.0.2.1") == 302


PROBE = """
import json, sys, django
django.setup()
from django.conf import settings
settings.CACHES = {"default": json.loads(sys.argv[1])}
from django.test import Client, RequestFactory
from convgen_site.ratelimit import login_rate_limiter
client = Client(REMOTE_ADDR=sys.argv[2], HTTP_HOST="localhost")
response = client.post("/accounts/login/", {"username": "ana", "password": "x"})
other = RequestFactory().post("/", REMOTE_ADDR=sys.argv[3])
print(json.dumps([response.status_code, login_rate_limiter.is_blocked(
    login_rate_limiter.keys(other, "someone-else"))]))
"""


@pytest.mark.django_db
def test_on_redis_another_worker_process_sees_the_same_count(
    redis_cache: dict[str, str], tmp_path: Path
) -> None:
    make_user(username="ana")
    for _ in range(5):
        assert _login("ana", "wrong", "10.0.2.2") == 200
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "convgen_site.settings", "DEBUG": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
           "CONVGEN_VAR_DIR": str(tmp_path)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(redis_cache), "10.0.2.2", "10.0.2.3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # The other process refuses the blocked address (without asking the database) and lets
    # another address try.
    assert json.loads(result.stdout) == [429, False]
