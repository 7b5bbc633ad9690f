"""Fixtures for the hardening tests: a database URL a subprocess can share, prepared data."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.training.conftest import write_data


def database_url() -> str:
    """The test database as a DATABASE_URL, so a subprocess (or a thread) sees the same rows."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host, port = db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(scope="session")
def train_data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_data(tmp_path_factory.mktemp("train-data")))
