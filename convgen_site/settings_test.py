"""Test settings: the real settings, pointed at TEST_DATABASE_URL / TEST_REDIS_URL when set."""

from __future__ import annotations

import os
import tempfile

_tmp = tempfile.mkdtemp(prefix="convgen-test-")
os.environ.setdefault("CONVGEN_VAR_DIR", _tmp)
if os.environ.get("TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
else:
    os.environ["DATABASE_URL"] = f"sqlite:///{_tmp}/test.sqlite3"
os.environ.setdefault("DEBUG", "1")

from convgen_site.settings import *  # noqa: E402,F403
from convgen_site.settings import DATABASES  # noqa: E402

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (whitenoise warns if missing)
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so that a real Celery worker process can see the test database.
    DATABASES["default"]["TEST"] = {"NAME": f"{_tmp}/test-db.sqlite3"}
else:
    # One database per test run: two runs against one shared server (a developer's and CI's)
    # must not drop each other's test database.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
