"""Token secrets: minted with a type prefix, stored only as SHA-256 digests, checked in constant time.

A plaintext token exists in exactly two places: the response that created it, and the
client that holds it. The database keeps `digest` (hex SHA-256) and the first characters
of the token for display.
"""

import hashlib
import hmac
import secrets
from datetime import UTC, date, datetime, time

from django.db import transaction

PERSONAL_PREFIX = "glpat-"  # personal, project and group access tokens
DEPLOY_PREFIX = "gldt-"
JOB_PREFIX = "glcbt-"
PREFIXES = (PERSONAL_PREFIX, DEPLOY_PREFIX, JOB_PREFIX)
SHOWN_PREFIX_LENGTH = 10


def mint(prefix):
    """A new secret: type prefix plus 160 bits of randomness, URL and header safe."""
    return prefix + secrets.token_urlsafe(20)


def digest(token):
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def matches(token, stored_digest):
    """Constant-time comparison of a presented token against a stored digest."""
    return hmac.compare_digest(digest(token), stored_digest or "")


def kind_of(token):
    """Which table a token belongs to, from its prefix (None: not a Packhouse token)."""
    for prefix in PREFIXES:
        if token.startswith(prefix):
            return prefix
    return None


def issue(model_instance, prefix):
    """Give a new (unsaved or saved) token row a fresh secret; returns the plaintext once."""
    token = mint(prefix)
    model_instance.digest = digest(token)
    model_instance.token_prefix = token[:SHOWN_PREFIX_LENGTH]
    with transaction.atomic():
        model_instance.save()
    return token


def expiry_from_date(value):
    """GitLab expiry: a date means the token expires at 00:00 UTC of that date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        if "T" in text:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        value = date.fromisoformat(text)
    return datetime.combine(value, time.min, tzinfo=UTC)
