"""The two roles of convgen (researcher, rater), kept as Django groups."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.permissions import BasePermission

RESEARCHER = "researcher"
RATER = "rater"
ROLES = (RESEARCHER, RATER)

F = TypeVar("F", bound=Callable[..., Any])


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if not user.is_authenticated:
        return False
    if role == RESEARCHER and getattr(user, "is_superuser", False):
        return True
    # Cache per request object: templates and permissions ask several times.
    cache: dict[str, bool] = user.__dict__.setdefault("_convgen_roles", {})
    if role not in cache:
        cache[role] = user.groups.filter(name=role).exists()  # type: ignore[attr-defined]
    return cache[role]


def is_researcher(user: AbstractBaseUser | AnonymousUser) -> bool:
    return has_role(user, RESEARCHER)


def is_rater(user: AbstractBaseUser | AnonymousUser) -> bool:
    return has_role(user, RATER)


def add_role(user: AbstractBaseUser, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)  # type: ignore[attr-defined]
    user.__dict__.pop("_convgen_roles", None)


def researcher_required(view: F) -> F:
    """Login required, then 403 unless the user is a researcher."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not is_researcher(request.user):
            raise PermissionDenied("researchers only")
        return view(request, *args, **kwargs)

    return login_required(wrapper)  # type: ignore[return-value]


def rater_required(view: F) -> F:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not (is_rater(request.user) or is_researcher(request.user)):
            raise PermissionDenied("raters only")
        return view(request, *args, **kwargs)

    return login_required(wrapper)  # type: ignore[return-value]


class IsResearcher(BasePermission):
    message = "Only researchers may do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_researcher(request.user)


class IsRater(BasePermission):
    message = "Only raters may do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_rater(request.user) or is_researcher(request.user)


def role_context(request: HttpRequest) -> dict[str, bool]:
    """Template context: which role the signed-in user has."""
    user = getattr(request, "user", None)
    if user is None:
        return {"is_researcher": False, "is_rater": False}
    return {"is_researcher": is_researcher(user), "is_rater": is_rater(user)}
