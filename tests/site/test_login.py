import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


@pytest.mark.django_db
def test_login_with_the_right_password_works() -> None:
    UserFactory(username="ana")
    client = Client()
    response = client.post("/accounts/login/", {"username": "ana", "password": "pw-for-tests-1"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_login_is_blocked_after_five_failures_even_with_the_right_password() -> None:
    UserFactory(username="ana")
    client = Client()
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "ana", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": "ana", "password": "pw-for-tests-1"})
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content


@pytest.mark.django_db
def test_login_form_requires_csrf() -> None:
    UserFactory(username="ana")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "ana", "password": "pw-for-tests-1"})
    assert response.status_code == 403
