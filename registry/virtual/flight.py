"""Single flight (spec §3.4): concurrent misses for one (upstream, path) fetch it once. The first
requester takes a PostgreSQL session advisory lock while it fetches; the others wait (at most
PACKHOUSE_VR_FETCH_WAIT_SECONDS, 30 by default) and then find the stored entry. A waiter past the
limit gets 503 with `Retry-After: 5`. SQLite (the embedded default) serialises writes already;
there the lock is a no-op."""

import hashlib
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from registry.errors import UpstreamUnavailable

RETRY_AFTER_SECONDS = 5


class Busy(UpstreamUnavailable):
    default_message = "503 Service Unavailable - the file is being fetched from the upstream; try again shortly"
    retry_after = RETRY_AFTER_SECONDS


def _key(upstream_id, cache_key):
    digest = hashlib.sha256(f"virtual-fetch:{upstream_id}:{cache_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def single_flight(upstream_id, cache_key, wait=None):
    if connection.vendor != "postgresql":
        yield
        return
    lock = _key(upstream_id, cache_key)
    deadline = time.monotonic() + (settings.VR_FETCH_WAIT_SECONDS if wait is None else wait)
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                raise Busy()
            time.sleep(0.05)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])
