"""Change epochs: random values in the shared cache (Redis) that change whenever what they stand
for changes, so a process can tell whether something it remembers is still true: from memory that
Redis keeps current (registry.epoch_mirror), or with one round trip when that memory has no answer.

- IDENTITY: users, groups, projects, memberships, the job-token allowlist (registry.invalidation).
- credential(digest): one token or CI job (revoked, expired, finished, deleted).
- package(format, name) and format_wide(format): the packages of that name / that format. These
  are the one stamp of a package: cached documents (registry.documents), replayed answers
  (registry.response_cache) and remembered file lookups (registry.access_cache) all key on them.
- virtual_registry(id): one virtual registry's configuration and the remote cache it serves from
  (registry.virtual.changes): what its replayed metadata answers key on, besides the packages of
  the name they answer for (local upstreams).

They live in Redis when there is one; without it (the embedded default) in files under the var
directory that every process of the machine shares (the `epochs` cache), so documents cached in
one worker's memory still change when another worker publishes.

An epoch is a fresh random value, never a counter, so a flushed or restarted cache can never make
an old value current again: a missing key reads as a new value and whatever was remembered under
the old one is simply not reused. Writers change an epoch both at once and after their transaction
commits: at once so that readers inside the same transaction see it, after commit so that a reader
who read the old rows between the two cannot keep them.

A change of identity whose epochs cannot be changed at once must not happen: every process would
go on trusting what it remembered (a revoked token would keep working). `bump` then raises
ChangeNotPublished (503) before the change is written, or inside its transaction, which rolls it
back. A package write goes on (`required=False`: the registry keeps publishing while Redis is
down) and records the keys it could not change in its own transaction (PendingEpochChange);
they are changed as soon as the store takes writes again: after the next package write, and by
the `announce_pending_epoch_changes` beat task. Should the second change after commit fail, the
keys are deleted instead (a missing key never matches a remembered value).
"""

import functools
import hashlib
import logging
import uuid

import redis
from django.core.cache import caches
from django.db import transaction

from accounts import redis_client
from registry import epoch_mirror
from registry.errors import ChangeNotPublished
from registry.models import PendingEpochChange

logger = logging.getLogger(__name__)

EPOCH_PREFIX = "epoch:"  # every epoch key's name starts with it (the mirror tracks them by it)
IDENTITY = f"{EPOCH_PREFIX}identity"
# Epoch keys expire: an expired key reads as a new epoch, which only costs a rebuild.
TIMEOUT = 7 * 24 * 3600


# Straight on Redis (accounts.redis_client): this is on the hot path of every reused response.
_client = redis_client.client
_key = redis_client.key


def client():
    """The process's Redis client (None without Redis)."""
    return _client()


def ping():
    """Raise redis.RedisError unless Redis answers (nothing to reach without Redis)."""
    client = _client()
    if client is not None:
        client.ping()


# What a store may raise when it cannot answer: Redis errors, or file errors for the shared files.
FAILURES = (redis.RedisError, OSError)


class _RedisStore:
    """Epochs in Redis, read through this process's mirror (registry.epoch_mirror) when on."""

    def __init__(self, client):
        self.client = client

    def set_new(self, names):
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, uuid.uuid4().hex, ex=TIMEOUT)
            pipe.execute()

    def set_missing(self, names):
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, uuid.uuid4().hex, ex=TIMEOUT, nx=True)
            pipe.execute()

    def delete(self, names):
        self.client.delete(*names)

    def read(self, names):
        """The values of `names`: from the mirror when it knows them all, else with one MGET,
        whose answer the mirror keeps unless a change raced it."""
        mirror = epoch_mirror.mirror(_key(EPOCH_PREFIX))
        if mirror is None:
            return self.client.mget(names)
        known = mirror.lookup(names)
        if known is not None:
            return known
        read = mirror.begin_read(names)
        values = None
        try:
            values = self.client.mget(names)
        finally:
            mirror.end_read(read, names, values)
        return values


class _SharedFileStore:
    """Epochs in the `epochs` cache: files every process of the machine shares (no Redis)."""

    def __init__(self, cache):
        self.cache = cache

    def set_new(self, names):
        self.cache.set_many({name: uuid.uuid4().hex for name in names}, TIMEOUT)

    def set_missing(self, names):
        for name in names:
            self.cache.add(name, uuid.uuid4().hex, TIMEOUT)

    def delete(self, names):
        self.cache.delete_many(names)

    def read(self, names):
        found = self.cache.get_many(names)
        return [found.get(name) for name in names]


@functools.cache
def _store():
    client = _client()
    return _RedisStore(client) if client is not None else _SharedFileStore(caches["epochs"])


def credential(digest):
    return f"{EPOCH_PREFIX}cred:{digest}"


def package(format_name, normalized_name):
    name = hashlib.sha256(f"{format_name}\0{normalized_name}".encode()).hexdigest()[:32]
    return f"{EPOCH_PREFIX}pkg:{name}"


def format_wide(format_name):
    return f"{EPOCH_PREFIX}fmt:{format_name}"


def virtual_registry(registry_id):
    return f"{EPOCH_PREFIX}virtual:{registry_id}"


def package_keys(format_name, normalized_name):
    """What a change to one package changes: its name's epoch and its format's."""
    return [package(format_name, normalized_name), format_wide(format_name)]


def bump(keys, required=True):
    """Give `keys` new epochs now and again when the current transaction commits (see bump_now);
    keys that could not be changed now (`required=False`) are recorded to be changed later."""
    keys = list(keys)
    if not bump_now(keys, required):
        PendingEpochChange.objects.create(keys=keys)
    bump_after_commit(keys)


def bump_now(keys, required=True):
    """New epochs for `keys` at once: call it before the change is written (or inside its
    transaction); whether they were changed. When they cannot be changed, a `required` change is
    refused with ChangeNotPublished; any other is only logged (and recorded by `bump`)."""
    keys = list(keys)
    if not keys:
        return True
    try:
        _store().set_new([_key(key) for key in keys])
        return True
    except FAILURES as exc:
        if not required:
            logger.warning("could not bump epochs: %s", exc.__class__.__name__)
            return False
        logger.error("refusing a change whose epochs cannot be changed: %s", exc.__class__.__name__)
        raise ChangeNotPublished() from exc


def bump_after_commit(keys):
    """New epochs for `keys` once the current transaction commits (at once outside one)."""
    keys = list(keys)
    if not keys:
        return
    transaction.on_commit(lambda: _renew_or_delete(keys))


def _renew_or_delete(keys):
    names = [_key(key) for key in keys]
    try:
        _store().set_new(names)
    except FAILURES as exc:
        logger.error("could not renew epochs after a change: %s; deleting them", exc.__class__.__name__)
    else:
        try:
            announce_pending()
        except Exception as exc:  # the next write or the beat task will
            logger.warning("could not announce pending package changes: %s", exc.__class__.__name__)
        return
    try:
        _store().delete(names)
    except FAILURES as exc:
        logger.error("could not delete epochs after a change: %s", exc.__class__.__name__)


def announce_pending(batch=500):
    """Change the epochs that package writes recorded as not changed (PendingEpochChange); the
    number of records done. Raises the store's error when it still refuses."""
    pending = list(PendingEpochChange.objects.order_by("pk")[:batch])
    if not pending:
        return 0
    _store().set_new(sorted({_key(key) for change in pending for key in change.keys}))
    PendingEpochChange.objects.filter(pk__in=[change.pk for change in pending]).delete()
    logger.info("announced %d package changes made while epochs could not be changed", len(pending))
    return len(pending)


def current(keys):
    """The current epochs of `keys` (a list, in order); None when they cannot be known.

    Keys that have none get one first, so every value returned can be remembered and compared."""
    names = [_key(key) for key in keys]
    store = _store()
    try:
        values = store.read(names)
        missing = [name for name, value in zip(names, values, strict=True) if value is None]
        if missing:
            store.set_missing(missing)
            values = store.read(names)
    except FAILURES as exc:
        logger.warning("could not read epochs: %s", exc.__class__.__name__)
        return None
    return None if None in values else values


def unchanged(keys, remembered):
    """Whether every key still has the epoch remembered for it (no round trip while this
    process's mirror knows them all; one otherwise)."""
    try:
        return _store().read([_key(key) for key in keys]) == remembered
    except FAILURES:
        return False
