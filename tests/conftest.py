"""Shared fixtures: users with roles, API clients."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from convgen_site.roles import RATER, RESEARCHER, add_role
from tests.factories import make_user

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _own_data_dirs(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Uploads, datasets and runs of one test never meet another test's files."""
    root = tmp_path_factory.mktemp("var")
    settings.CONVGEN_DATA_DIR = root / "data"
    settings.CONVGEN_RUNS_DIR = root / "runs"


@pytest.fixture
def researcher(db: None) -> User:
    user = make_user(username="res")
    add_role(user, RESEARCHER)
    return user


@pytest.fixture
def rater(db: None) -> User:
    user = make_user(username="rat")
    add_role(user, RATER)
    return user


@pytest.fixture
def researcher_client(researcher: User) -> Client:
    client = Client()
    client.force_login(researcher)
    return client


@pytest.fixture
def rater_client(rater: User) -> Client:
    client = Client()
    client.force_login(rater)
    return client


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


TINY_CORPUS = [
    "Background: The river flows north through the valley and feeds the old mill.\n"
    "<human>: Which way does the river flow?\n<bot>: It flows north through the valley.",
    "Background: Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.\n"
    "<human>: What does photosynthesis produce?\n<bot>: Sugar and oxygen.",
    "Background: ภาษาไทยเป็นภาษาราชการของประเทศไทย\n<human>: ภาษาราชการของไทยคืออะไร\n<bot>: ภาษาไทย",
    "Background: A prime number has exactly two divisors, one and itself.\n"
    "<human>: How many divisors does a prime have?\n<bot>: Exactly two. Examples include: 2, 3, 5.",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny LlamaForCausalLM + BPE tokenizer built locally once per test session (no download)."""
    from modeling.tiny_model import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_model(out, TINY_CORPUS * 8, seed=0)
    return str(out)
