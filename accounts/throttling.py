"""Rate limits: failed authentications per client address, and package API requests per
credential or per address.

- Every rejected credential and every failed web sign-in counts against the caller's address;
  past PACKHOUSE_AUTH_FAILURE_LIMIT failures in PACKHOUSE_AUTH_FAILURE_WINDOW seconds, requests
  that carry a credential from that address get 429 with Retry-After until the window ends. A
  successful web sign-in (a password, which proves who the caller is) clears the address's count;
  a valid token does not, or one token would unlock unlimited guessing of others.
- PACKHOUSE_PACKAGE_REQUEST_LIMIT (per credential) and PACKHOUSE_PACKAGE_REQUEST_LIMIT_ANONYMOUS
  (per address, for requests without one) cap package API requests per
  PACKHOUSE_PACKAGE_REQUEST_WINDOW seconds, as GitLab's package registry rate limits do; 0 (the
  default) is no limit.

Counters live in the `counters` cache: Redis when there is one, otherwise files under the var
directory, so every process of a machine shares them (a per-process count would multiply the
limit by the number of workers). The cache is an accelerator only: when it is unreachable nothing
is limited and nothing fails.
"""

import logging
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)


def client_address(request):
    return address_of(request.META)


def address_of(meta):
    """The client's address from a WSGI environ (request.META): X-Forwarded-For's entry that
    many trusted proxies back (PACKHOUSE_TRUSTED_PROXY_COUNT), else REMOTE_ADDR."""
    if settings.TRUSTED_PROXY_COUNT:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= settings.TRUSTED_PROXY_COUNT:
            return forwarded[-settings.TRUSTED_PROXY_COUNT]
    return meta.get("REMOTE_ADDR", "")


def _window_key(prefix, subject, window):
    now = time.time()
    return f"{prefix}:{subject}:{int(now // window)}", window - int(now % window)


def _counters():
    return caches["counters"]


def _count(key, remaining):
    """Add one to a window's counter; the new value, or None when the cache is unreachable."""
    try:
        counters = _counters()
        if counters.add(key, 1, timeout=remaining + 1):
            return 1
        return counters.incr(key)
    except ValueError:  # expired between add and incr
        return 1
    except Exception as exc:
        logger.warning("rate limit unavailable: %s", exc.__class__.__name__)
        return None


def _failure_key(address):
    return _window_key("authfail", address, settings.AUTH_FAILURE_WINDOW)


def check(request):
    """Raise Throttled when this address has failed too often in the current window."""
    limit = settings.AUTH_FAILURE_LIMIT
    if not limit:
        return
    key, remaining = _failure_key(client_address(request))
    try:
        failures = _counters().get(key, 0)
    except Exception as exc:  # cache down: do not limit
        logger.warning("auth throttle unavailable: %s", exc.__class__.__name__)
        return
    if failures >= limit:
        raise exceptions.Throttled(wait=remaining, detail="429 Too Many Requests - too many failed authentications")


def record_failure(request):
    if settings.AUTH_FAILURE_LIMIT:
        _count(*_failure_key(client_address(request)))


def forget_failures(request):
    """A successful web sign-in: the address's failures are forgiven."""
    if not settings.AUTH_FAILURE_LIMIT:
        return
    try:
        _counters().delete(_failure_key(client_address(request))[0])
    except Exception as exc:
        logger.warning("auth throttle unavailable: %s", exc.__class__.__name__)


def package_request_limits_on():
    return bool(settings.PACKAGE_REQUEST_LIMIT or settings.PACKAGE_REQUEST_LIMIT_ANONYMOUS)


class PackageRequestThrottle(BaseThrottle):
    """The package API's request limits (DRF throttle; the views answer 429 in their client's
    shape, with Retry-After)."""

    def allow_request(self, request, view):
        principal = getattr(request, "auth", None)
        if principal is not None and not principal.is_anonymous:
            limit, subject = settings.PACKAGE_REQUEST_LIMIT, _principal_subject(principal)
        else:
            limit, subject = settings.PACKAGE_REQUEST_LIMIT_ANONYMOUS, client_address(request)
        if not limit:
            return True
        key, self.remaining = _window_key("requests", subject, settings.PACKAGE_REQUEST_WINDOW)
        count = _count(key, self.remaining)
        return count is None or count <= limit

    def wait(self):
        return self.remaining


def _principal_subject(principal):
    row = principal.access_token or principal.deploy_token
    if row is not None:
        return f"{type(row).__name__}:{row.pk}"
    if principal.job is not None:
        return f"job:{principal.job.pk}"
    return f"user:{principal.user.pk}" if principal.user is not None else "anonymous"
