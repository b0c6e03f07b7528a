"""Hits of a virtual registry's cached files replayed before Django, counted without Django.

Spec §3.4: a hit bumps its cache entry's `downloads_count`/`downloaded_at`, at most one write per
entry per minute (registry.virtual.resolver._count_download, for answers Django builds). A
replayed file (registry.response_cache) notes its hit here instead of ending its replay when the
count is due: the process keeps the newest hit of each entry and sends them to Redis in one call
every PACKHOUSE_DOWNLOAD_COUNT_BATCH_SECONDS (registry.process_batch; 0: one call per hit), an
HSET of the hit's time into the hash `virtual-hits` under the entry (the newest hit wins).
`flush()` (the beat task `flush_download_counts`, every PACKHOUSE_DOWNLOAD_COUNT_FLUSH_SECONDS)
makes each noted hit the resolver's own write: counted only when the row was not counted in the
minute before it. So an entry is still counted at most once a minute, and a due count is at most
batch + flush seconds late. Without Redis, or when it refuses, the hits are written to the rows
directly (by the batch's send).
"""

import logging
import time
from datetime import UTC, datetime, timedelta

import redis
from django.db import transaction
from django.db.models import F, Q

from accounts import redis_client
from registry import download_counts
from registry.models import CacheEntry
from registry.process_batch import ProcessBatch

logger = logging.getLogger(__name__)

HITS = "virtual-hits"  # hash: cache entry id -> unix time of its newest replayed hit
INTERVAL = timedelta(minutes=1)


def record(entry_id):
    """Count one replayed hit of the cache entry (at most once a minute per entry)."""
    _batch.add(entry_id, time.time())


def _send(hits):
    """{entry id: unix time of its newest hit} to Redis, or to the rows when Redis refuses."""
    client = redis_client.client()
    if client is not None:
        try:
            client.hset(redis_client.key(HITS), mapping={entry_id: repr(moment) for entry_id, moment in hits.items()})
            return
        except redis.RedisError as exc:
            logger.warning("virtual hits counted in the database: Redis refused them (%s)", exc.__class__.__name__)
    _count({entry_id: datetime.fromtimestamp(moment, tz=UTC) for entry_id, moment in hits.items()})


_batch = ProcessBatch("virtual hits", _send, max, download_counts.batch_seconds)


def send_batch():
    """Send this process's noted hits now (they are kept on a failure, which propagates)."""
    _batch.send()


def flush():
    """Write the noted hits (this process's batch first) to their entries; the number of entries
    noted (a failed write puts them back: accounts.redis_client.drain_hash)."""
    with _batch.sending:
        send_batch()
        return redis_client.drain_hash(HITS, _count_noted)


def _count_noted(noted):
    _count({int(entry_id): datetime.fromtimestamp(float(moment), tz=UTC) for entry_id, moment in noted.items()})


def _count(batch):
    """{entry id: time of the hit}: each counted unless its row was counted in the minute before."""
    with transaction.atomic():
        for entry_id, moment in sorted(batch.items()):
            CacheEntry.objects.filter(pk=entry_id).filter(
                Q(downloaded_at__isnull=True) | Q(downloaded_at__lte=moment - INTERVAL)
            ).update(downloads_count=F("downloads_count") + 1, downloaded_at=moment)
