"""Who a credential is and what it reaches, remembered per process under the identity epochs.

A package request starts by reading two epochs (registry.epochs) in one round trip: the
instance-wide identity epoch and its credential's own. What the pipeline then works out from the
database is remembered with those values (and today's date, since memberships end at midnight) in
its key:

- the Principal the presented credential resolves to; on every reuse its expiry is checked again
  and its last use recorded as often as TOKEN_LAST_USED_INTERVAL says;
- the project or group a path or id names;
- a user's effective access level in a project or group, and the job-token allowlist answer.

Any change to a user, group, project, membership, allowlist or token (registry.invalidation), or
the end of a CI job, gives new epochs, so nothing remembered before it is ever found again.
Failures are never remembered: a bad credential is looked up (and throttled) every time.
Without Redis (EPOCH_CACHES off) every request computes everything.
"""

import hashlib

from django.conf import settings
from django.core.signals import setting_changed
from django.utils import timezone

from accounts import tokens
from accounts.authentication import (
    CREDENTIAL_HEADERS,
    InvalidCredential,
    authenticate_request,
    presented_credential,
    record_use,
)
from registry import epochs
from registry.lru import BoundedLRU

_MISSING = object()


# Small values bounded by count; one older than AUTHORIZATION_MAX_AGE is never returned, whatever
# its epochs say.
memory = BoundedLRU(limit=lambda: settings.ACCESS_CACHE_ENTRIES, max_age=lambda: settings.AUTHORIZATION_MAX_AGE)


def _forget_everything(**kwargs):
    memory.clear()


setting_changed.connect(_forget_everything, dispatch_uid="access-cache-settings")


def identity_keys(meta):
    """The epoch keys a request's identity depends on; None for a malformed credential."""
    try:
        credential = presented_credential(meta)
    except InvalidCredential:
        return None
    if credential is None:
        return [epochs.IDENTITY]
    return [epochs.IDENTITY, epochs.credential(tokens.digest(credential[0]))]


class RequestMemory:
    """What one request may remember and recall (policy functions take it as `memory`)."""

    def __init__(self, identity_epoch, credential_key, package_epochs=()):
        self.identity_epoch = identity_epoch
        self.credential_key = credential_key  # the credential epoch and the presented headers
        self.package_epochs = package_epochs  # of the packages the view declared, if any

    @classmethod
    def for_request(cls, request, package_keys=None, known_epochs=None):
        """Read the identity epochs and those of `package_keys` in one round trip (unless the
        caller has read exactly those already: `known_epochs` = (keys, values)), before anything
        about the request is looked up; None when nothing may be remembered."""
        if not settings.EPOCH_CACHES:
            return None
        identity = identity_keys(request.META)
        if identity is None:
            return None
        keys = identity + list(package_keys or ())
        if known_epochs is not None and list(known_epochs[0]) == keys:
            values = known_epochs[1]
        else:
            values = epochs.current(keys)
            if values is None:
                return None
        presented = "\0".join(request.META.get(header, "") for header in CREDENTIAL_HEADERS)
        credential = (
            tuple(values[1 : len(identity)]),
            hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest(),
        )
        return cls(values[0], credential, tuple(values[len(identity) :]))

    def remember(self, key, compute):
        """`compute()`, or what it returned before under the same epochs and date."""
        full_key = (self.identity_epoch, timezone.now().date(), *key)
        value = memory.get(full_key, _MISSING)
        if value is _MISSING:
            value = compute()
            memory.put(full_key, value)
        return value

    def remember_under_packages(self, key, compute):
        """`remember`, also keyed by the package epochs; computed every time without them."""
        if not self.package_epochs:
            return compute()
        return self.remember(("packages", self.package_epochs, *key), compute)

    def principal(self, request):
        """The Principal for the request's credential (see accounts.authentication)."""
        key = ("principal", self.credential_key)
        principal = self.remember(key, lambda: authenticate_request(request))
        row = principal.access_token or principal.deploy_token
        if row is not None and row.expired:
            return authenticate_request(request)  # refused (and counted) as any expired token
        record_use(principal)
        return principal
