"""Re-encrypt every stored upstream secret with the first key of PACKHOUSE_ENCRYPTION_KEYS
(registry.virtual.crypto): put a new key first, run this, then drop the old key."""

from django.core.management.base import BaseCommand
from django.db import transaction

from registry.virtual import crypto
from registry.virtual.models import Upstream


class Command(BaseCommand):
    help = "Re-encrypt upstream secrets of virtual registries with the newest key."

    def handle(self, *args, **options):
        rotated = 0
        with transaction.atomic():
            for upstream in Upstream.objects.select_for_update().exclude(
                password_encrypted="", auth_token_encrypted=""
            ):
                upstream.password_encrypted = crypto.rotate(upstream.password_encrypted)
                upstream.auth_token_encrypted = crypto.rotate(upstream.auth_token_encrypted)
                upstream.save(update_fields=["password_encrypted", "auth_token_encrypted"])
                rotated += 1
        self.stdout.write(f"re-encrypted the secrets of {rotated} upstreams")
