"""Create (or reset) one researcher and one rater account and print their credentials."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from convgen_site.roles import RATER, RESEARCHER, add_role


class Command(BaseCommand):
    help = "Create a researcher and a rater account (passwords are printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--researcher", default="researcher", help="researcher username")
        parser.add_argument("--rater", default="rater", help="rater username")
        parser.add_argument(
            "--password", default=None, help="password for both (default: a new random one each)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        for username, role in ((options["researcher"], RESEARCHER), (options["rater"], RATER)):
            password = options["password"] or secrets.token_urlsafe(9)
            user, _ = user_model.objects.get_or_create(username=username)
            user.set_password(password)
            if role == RESEARCHER:
                user.is_staff = True  # researchers may use the admin site
                user.is_superuser = True
            user.save()
            add_role(user, role)
            self.stdout.write(f"{role:<10} username: {username:<12} password: {password}")
