"""Secrets Packhouse must send on (webhook tokens), encrypted at rest with Fernet (AES-CBC with an
HMAC, from the `cryptography` library) under a key derived from PACKHOUSE_SECRET_KEY by HKDF.
They are written here and read back only to be sent; no answer or page ever shows one."""

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@cache
def _fernet(secret_key):
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"packhouse stored secrets").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext):
    """The stored form of `plaintext` ("" stays "": no secret)."""
    if not plaintext:
        return ""
    return _fernet(settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


def decrypt(stored):
    """The plaintext of a stored secret; "" when there is none, ValueError when the key changed."""
    if not stored:
        return ""
    try:
        return _fernet(settings.SECRET_KEY).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise ValueError("the secret cannot be read with this PACKHOUSE_SECRET_KEY") from None
