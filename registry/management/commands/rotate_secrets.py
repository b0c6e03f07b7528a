"""Re-encrypt every stored secret (webhook tokens, upstream passwords and tokens) with the first
key of PACKHOUSE_ENCRYPTION_KEYS (registry.secrets): put a new key first, run this, then drop the
old key."""

from django.core.management.base import BaseCommand
from django.db import transaction

from registry import secrets
from registry.models import Webhook
from registry.virtual.models import Upstream


class Command(BaseCommand):
    help = "Re-encrypt stored secrets (webhook tokens, upstream credentials) with the newest key."

    def handle(self, *args, **options):
        with transaction.atomic():
            upstreams = 0
            for upstream in Upstream.objects.select_for_update().exclude(
                password_encrypted="", auth_token_encrypted=""
            ):
                upstream.password_encrypted = secrets.rotate(upstream.password_encrypted)
                upstream.auth_token_encrypted = secrets.rotate(upstream.auth_token_encrypted)
                upstream.save(update_fields=["password_encrypted", "auth_token_encrypted"])
                upstreams += 1
            hooks = 0
            for hook in Webhook.objects.select_for_update().exclude(encrypted_token=""):
                hook.encrypted_token = secrets.rotate(hook.encrypted_token)
                hook.save(update_fields=["encrypted_token"])
                hooks += 1
        self.stdout.write(f"re-encrypted the secrets of {upstreams} upstreams and {hooks} webhooks")
