"""Failed-authentication rate limit per client address.

Every rejected credential counts against the caller's IP in the cache; past
PACKHOUSE_AUTH_FAILURE_LIMIT failures in PACKHOUSE_AUTH_FAILURE_WINDOW seconds, requests that
carry a credential from that address get 429 with Retry-After until the window ends. The cache
is an accelerator only: when it is unreachable nothing is limited and nothing fails.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions

logger = logging.getLogger(__name__)


def client_address(request):
    meta = request.META
    if settings.TRUSTED_PROXY_COUNT:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= settings.TRUSTED_PROXY_COUNT:
            return forwarded[-settings.TRUSTED_PROXY_COUNT]
    return meta.get("REMOTE_ADDR", "")


def _key(address):
    window = settings.AUTH_FAILURE_WINDOW
    return f"authfail:{address}:{int(time.time() // window)}", window - int(time.time() % window)


def check(request):
    """Raise Throttled when this address has failed too often in the current window."""
    limit = settings.AUTH_FAILURE_LIMIT
    if not limit:
        return
    key, remaining = _key(client_address(request))
    try:
        failures = cache.get(key, 0)
    except Exception as exc:  # cache down: do not limit
        logger.warning("auth throttle unavailable: %s", exc.__class__.__name__)
        return
    if failures >= limit:
        raise exceptions.Throttled(wait=remaining, detail="429 Too Many Requests - too many failed authentications")


def record_failure(request):
    if not settings.AUTH_FAILURE_LIMIT:
        return
    key, remaining = _key(client_address(request))
    try:
        if not cache.add(key, 1, timeout=remaining + 1):
            cache.incr(key)
    except Exception as exc:
        logger.warning("auth throttle unavailable: %s", exc.__class__.__name__)
