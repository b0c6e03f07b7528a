"""Change epochs: random values in the shared cache (Redis) that change whenever what they stand
for changes, so a process can tell whether something it remembers is still true: from memory that
Redis keeps current (registry.epoch_mirror), or with one round trip when that memory has no answer.

- IDENTITY: users, groups, projects, memberships, the job-token allowlist (registry.invalidation).
- credential(digest): one token or CI job (revoked, expired, finished, deleted).
- package(format, name) and format_wide(format): the packages of that name / that format.

An epoch is a fresh random value, never a counter, so a flushed or restarted cache can never make
an old value current again: a missing key reads as a new value and whatever was remembered under
the old one is simply not reused. Writers change an epoch both at once and after their transaction
commits: at once so that readers inside the same transaction see it, after commit so that a reader
who read the old rows between the two cannot keep them.

A change of identity whose epochs cannot be changed at once must not happen: every process would go
on trusting what it remembered (a revoked token would keep working). `bump` then raises
ChangeNotPublished (503) before the change is written, or inside its transaction, which rolls it
back. A package write goes on (`required=False`): a stale document is no decision about access. Should the
second change after commit fail, the keys are deleted instead (a missing key never matches a
remembered value); what still slips through is bounded by AUTHORIZATION_MAX_AGE.
"""

import functools
import hashlib
import logging
import uuid

import redis
from django.conf import settings
from django.db import transaction

from registry import epoch_mirror
from registry.errors import ChangeNotPublished

logger = logging.getLogger(__name__)

EPOCH_PREFIX = "epoch:"  # every epoch key's name starts with it (the mirror tracks them by it)
IDENTITY = f"{EPOCH_PREFIX}identity"
# Epoch keys expire: an expired key reads as a new epoch, which only costs a rebuild.
TIMEOUT = 7 * 24 * 3600


@functools.cache
def _client():
    """One client (and connection pool) per process, straight on Redis: this is on the hot path
    of every reused response, and values are short strings, not pickles. None without Redis
    (nothing is reused then, so there is nothing to keep)."""
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def client():
    """The process's Redis client (None without Redis)."""
    return _client()


def ping():
    """Raise redis.RedisError unless Redis answers (nothing to reach without Redis)."""
    client = _client()
    if client is not None:
        client.ping()


def _key(name):
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{name}"


def credential(digest):
    return f"{EPOCH_PREFIX}cred:{digest}"


def package(format_name, normalized_name):
    name = hashlib.sha256(f"{format_name}\0{normalized_name}".encode()).hexdigest()[:32]
    return f"{EPOCH_PREFIX}pkg:{name}"


def format_wide(format_name):
    return f"{EPOCH_PREFIX}fmt:{format_name}"


def package_keys(format_name, normalized_name):
    """What a change to one package changes: its name's epoch and its format's."""
    return [package(format_name, normalized_name), format_wide(format_name)]


def bump(keys, required=True):
    """Give `keys` new epochs now and again when the current transaction commits (see bump_now)."""
    keys = list(keys)
    bump_now(keys, required)
    bump_after_commit(keys)


def bump_now(keys, required=True):
    """New epochs for `keys` at once: call it before the change is written (or inside its
    transaction). When they cannot be changed, a `required` change is refused with
    ChangeNotPublished; any other is only logged (what it leaves stale is never a decision about
    access, and lasts at most AUTHORIZATION_MAX_AGE)."""
    keys = list(keys)
    if not keys or _client() is None:
        return
    try:
        _set_new(keys)
    except redis.RedisError as exc:
        if not required:
            logger.warning("could not bump epochs: %s", exc.__class__.__name__)
            return
        logger.error("refusing a change whose epochs cannot be changed: %s", exc.__class__.__name__)
        raise ChangeNotPublished() from exc


def bump_after_commit(keys):
    """New epochs for `keys` once the current transaction commits (at once outside one)."""
    keys = list(keys)
    if not keys or _client() is None:
        return
    transaction.on_commit(lambda: _renew_or_delete(keys))


def _set_new(keys):
    with _client().pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(_key(key), uuid.uuid4().hex, ex=TIMEOUT)
        pipe.execute()


def _renew_or_delete(keys):
    try:
        _set_new(keys)
        return
    except redis.RedisError as exc:
        logger.error("could not renew epochs after a change: %s; deleting them", exc.__class__.__name__)
    try:
        _client().delete(*[_key(key) for key in keys])
    except redis.RedisError as exc:
        logger.error("could not delete epochs after a change: %s", exc.__class__.__name__)


def current(keys):
    """The current epochs of `keys` (a list, in order); None when they cannot be known.

    Keys that have none get one first, so every value returned can be remembered and compared."""
    client = _client()
    if client is None:
        return None
    names = [_key(key) for key in keys]
    try:
        values = _read(client, names)
        missing = [name for name, value in zip(names, values, strict=True) if value is None]
        if missing:
            with client.pipeline(transaction=False) as pipe:
                for name in missing:
                    pipe.set(name, uuid.uuid4().hex, ex=TIMEOUT, nx=True)
                pipe.execute()
            values = _read(client, names)
    except redis.RedisError as exc:
        logger.warning("could not read epochs: %s", exc.__class__.__name__)
        return None
    return None if None in values else values


def unchanged(keys, remembered):
    """Whether every key still has the epoch remembered for it (no round trip while this
    process's mirror knows them all; one otherwise)."""
    try:
        return _read(_client(), [_key(key) for key in keys]) == remembered
    except redis.RedisError:
        return False


def _read(client, names):
    """The values of `names`: from the mirror (registry.epoch_mirror) when it knows them all,
    else with one MGET, whose answer the mirror keeps unless a change raced it."""
    mirror = epoch_mirror.mirror(_key(EPOCH_PREFIX))
    if mirror is None:
        return client.mget(names)
    known = mirror.lookup(names)
    if known is not None:
        return known
    read = mirror.begin_read(names)
    values = None
    try:
        values = client.mget(names)
    finally:
        mirror.end_read(read, names, values)
    return values
