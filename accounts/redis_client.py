"""The process's own connection to Redis, for what Django's cache API cannot say (epochs with
their mirror, hash counters): one client and connection pool per process, short timeouts, values
as plain strings rather than pickles. None without Redis (PACKHOUSE_REDIS_URL unset).

It lives in accounts, the lowest layer, so that every layer uses the same one: accounts.last_use,
registry.epochs, registry.download_counts."""

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
