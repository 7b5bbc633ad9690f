"""factory_boy factories shared by the test suite."""

from __future__ import annotations

from typing import Any, cast

import factory
from django.contrib.auth.models import User


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


def make_user(**kwargs: Any) -> User:
    """A saved User (typed: factory_boy's ``__call__`` is typed as returning the factory)."""
    return cast(User, UserFactory(**kwargs))
