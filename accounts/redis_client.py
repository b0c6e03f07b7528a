"""The process's own connection to Redis, for what Django's cache API cannot say (epochs with
their mirror, hash counters): one client and connection pool per process, short timeouts, values
as plain strings rather than pickles. None without Redis (PACKHOUSE_REDIS_URL unset).

It lives in accounts, the lowest layer, so that every layer uses the same one: accounts.last_use,
registry.epochs, registry.download_counts, registry.virtual.hit_counts."""

import functools

import redis
from django.conf import settings


@functools.cache
def client():
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def key(name):
    """`name` under the instance's cache prefix (several instances may share one Redis)."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{name}"


# Takes a hash and deletes it in one step: a field written meanwhile lands in the next take.
_TAKE_HASH = """
local taken = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return taken
"""


def take_hash(redis_connection, name):
    """The hash `name` (under the instance's prefix) as {field: value} (str), deleted in the same
    step (the batches of accounts.last_use and registry.virtual.hit_counts)."""
    flat = redis_connection.eval(_TAKE_HASH, 1, key(name))
    items = [item.decode() if isinstance(item, bytes) else item for item in flat]
    return dict(zip(items[::2], items[1::2], strict=True))
