"""Create the first instance admin if there is none; print its password and an `api` token once."""

import secrets

from django.core.management.base import BaseCommand

from accounts import tokens
from accounts.models import AccessToken, User


class Command(BaseCommand):
    help = "Create an instance admin (and an api token) when the instance has none."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An instance admin exists already; nothing created.")
            return
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_superuser(username=username, email=f"{username}@localhost", password=password)
        token = tokens.issue(AccessToken(user=admin, name="bootstrap", scopes=["api"]), tokens.PERSONAL_PREFIX)
        self.stdout.write(
            f"Created instance admin {admin.username!r}\n"
            f"  password:  {password}\n"
            f"  api token: {token}\n"
            "Both are shown once; store them now."
        )
