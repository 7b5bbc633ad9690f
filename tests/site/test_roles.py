import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from convgen_site.roles import RATER, RESEARCHER, add_role, is_rater, is_researcher
from tests.factories import make_user


@pytest.mark.django_db
def test_migrations_create_both_role_groups() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {RESEARCHER, RATER}


@pytest.mark.django_db
def test_roles_are_group_memberships() -> None:
    user = make_user()
    assert not is_researcher(user) and not is_rater(user)
    add_role(user, RATER)
    assert is_rater(user) and not is_researcher(user)


@pytest.mark.django_db
def test_add_role_rejects_unknown_roles() -> None:
    with pytest.raises(ValueError, match="unknown role 'admin'"):
        add_role(make_user(), "admin")


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_home_shows_researcher_tools_to_researchers(researcher_client: Client) -> None:
    response = researcher_client.get("/")
    assert response.status_code == 200
    assert b"Data, training and generation" in response.content


def test_home_shows_rater_page_to_raters(rater_client: Client) -> None:
    response = rater_client.get("/")
    assert response.status_code == 200
    assert b"Go to my studies" in response.content
    assert b"Data, training and generation" not in response.content


def test_raters_cannot_open_researcher_pages(rater_client: Client) -> None:
    assert rater_client.get("/modeling/").status_code == 403
    assert rater_client.get("/admin/").status_code == 302  # admin sends non-staff to its login


def test_researchers_can_open_the_admin(researcher: User) -> None:
    researcher.is_staff = True
    researcher.is_superuser = True
    researcher.save()
    client = Client()
    client.force_login(researcher)
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_health_check_touches_the_database(client: Client) -> None:
    assert client.get("/healthz/").json() == {"ok": True}


@pytest.mark.django_db
def test_openapi_schema_is_served(researcher_client: Client) -> None:
    response = researcher_client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content
