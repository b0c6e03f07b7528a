"""Secrets Packhouse must send on, encrypted at rest with Fernet (AES-CBC with an HMAC, from the
`cryptography` library): webhook tokens (registry.webhooks) and virtual registries' upstream
passwords and tokens (registry.virtual). They are decrypted only to be sent; no answer, page or
log ever shows one.

Keys come from PACKHOUSE_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first): the first
encrypts, every one decrypts (MultiFernet), so a key is rotated by putting a new one in front,
running `manage.py rotate_secrets` (re-encrypts every stored secret with the first key) and then
dropping the old one. Without the variable a key is derived from PACKHOUSE_SECRET_KEY, so the
embedded default works; production sets it.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(ValueError):
    """A stored secret no configured key decrypts (the key that wrote it was dropped)."""


def _fernet():
    keys = [key.strip() for key in settings.ENCRYPTION_KEYS if key.strip()]
    if not keys:
        derived = hashlib.sha256(b"packhouse stored secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(secret):
    """The stored form of a secret ("" stays "": no secret)."""
    if not secret:
        return ""
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(stored):
    """The plaintext of a stored secret ("" when there is none); SecretUnreadable when no key reads it."""
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
