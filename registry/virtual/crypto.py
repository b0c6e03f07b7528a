"""Upstream secrets (passwords, tokens) encrypted at rest with Fernet.

Keys come from PACKHOUSE_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first): the first
encrypts, every one decrypts (MultiFernet), so a key is rotated by putting a new one in front,
running `manage.py rotate_upstream_secrets` (re-encrypts every stored secret with the first key)
and then dropping the old one. Without the variable a key is derived from the SECRET_KEY, so the
embedded default works; production sets it.

Secrets are decrypted only by the outbound client (registry.virtual.http) and never serialized,
logged or echoed.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret no configured key decrypts (the key that wrote it was dropped)."""


def _fernet():
    keys = [key.strip() for key in settings.ENCRYPTION_KEYS if key.strip()]
    if not keys:
        derived = hashlib.sha256(b"packhouse upstream secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(secret):
    """The stored form of a secret ("" stays "")."""
    if not secret:
        return ""
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(stored):
    if not stored:
        return ""
    try:
        return _fernet().decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("no configured key decrypts the stored secret") from exc


def rotate(stored):
    """The secret re-encrypted with the first key."""
    if not stored:
        return ""
    try:
        return _fernet().rotate(stored.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("no configured key decrypts the stored secret") from exc
