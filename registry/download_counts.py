"""Download counts and last-download times, recorded without a row lock on the download path.

Every finished download used to run `UPDATE package_versions SET download_count = download_count
+ 1` after its last byte: concurrent downloads of one version queued on that row's lock. With
Redis, a download adds one to the version's counter in a Redis hash (HINCRBY, with the time in a
second hash), and `flush()` moves every pending count to the database in one transaction: the
`flush_download_counts` beat task, every PACKHOUSE_DOWNLOAD_COUNT_FLUSH_SECONDS (10 by default).
So the counts the API and the pages show are at most that late.

Each process first adds its downloads up in its own memory and sends them to Redis in one call
every PACKHOUSE_DOWNLOAD_COUNT_BATCH_SECONDS (1 by default; 0: one call per download), from a
thread of its own: a Redis round trip per download was a quarter of the worker CPU of a
replayed 1 MiB download (BENCHMARKS.md). So the counts are at most batch + flush seconds late.

What can be lost: the downloads a web worker served in its last batch interval when it is killed
(SIGKILL, the OOM killer; a worker that exits, gracefully or on an error, sends them first); the
counts of one batch when the flusher dies between taking them from Redis and committing them (a
database failure puts them back). Without Redis, or when Redis refuses a batch, the counts are
added to the rows directly.
"""

import hashlib
import logging
import time
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest

from accounts import redis_client
from registry.models import PackageVersion
from registry.process_batch import ProcessBatch

logger = logging.getLogger(__name__)

COUNTS = "downloads:counts"  # hash: version id -> downloads not yet in the database
LAST = "downloads:last"  # hash: version id -> unix time of the newest of them

# Takes both hashes and deletes them in one step, so a download counted meanwhile lands in the
# next batch, never in none.
_TAKE = """
local counts = redis.call('HGETALL', KEYS[1])
local last = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
return {counts, last}
"""


# Downloads: ARGV holds (version id, downloads, unix time of the newest) triples; both hashes in
# one command (batches of several processes may arrive out of order: the newest time stays).
_COUNT = """
for i = 1, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  local last = tonumber(redis.call('HGET', KEYS[2], ARGV[i]))
  if not last or last < tonumber(ARGV[i + 2]) then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
end
"""
_COUNT_SHA1 = hashlib.sha1(_COUNT.encode()).hexdigest()  # noqa: S324 - Redis names scripts so


def _combine(old, new):
    return (old[0] + new[0], max(old[1], new[1]))


def batch_seconds():
    """How often a process sends what it counted (this module's downloads and
    registry.virtual.hit_counts' hits): 0, each at once, without Redis (its rows are written)."""
    return settings.DOWNLOAD_COUNT_BATCH_SECONDS if redis_client.client() is not None else 0


def record(version_id):
    """Count one finished download of the version."""
    _batch.add(version_id, (1, time.time()))


def send_batch():
    """Send this process's counted downloads to Redis now (or, when Redis refuses them, to the
    rows); on a failure they are kept for the next batch and the error propagates."""
    _batch.send()


def _send(taken):
    """{version id: (downloads, newest unix time)} to Redis, or to the rows when Redis refuses."""
    client = redis_client.client()
    if client is not None:
        args = []
        for version_id, (count, newest) in taken.items():
            args += [version_id, count, repr(newest)]
        keys_and_args = (redis_client.key(COUNTS), redis_client.key(LAST), *args)
        try:
            try:
                client.evalsha(_COUNT_SHA1, 2, *keys_and_args)
            except redis.exceptions.NoScriptError:  # a restarted Redis: load it again
                client.eval(_COUNT, 2, *keys_and_args)
            return
        except redis.RedisError as exc:
            logger.warning("download counts written to the database: Redis refused them (%s)", exc.__class__.__name__)
    _add({version_id: (count, datetime.fromtimestamp(newest, tz=UTC)) for version_id, (count, newest) in taken.items()})


_batch = ProcessBatch("download counts", _send, _combine, batch_seconds)


def flush():
    """Move the pending counts (this process's batch first) to the database; the number of
    versions updated."""
    client = redis_client.client()
    if client is None:
        return 0
    with _batch.sending:  # a batch this process's thread has on the way lands first
        send_batch()
        counts, last = client.eval(_TAKE, 2, redis_client.key(COUNTS), redis_client.key(LAST))
    counts = redis_client.pairs(counts)
    if not counts:
        return 0
    last = redis_client.pairs(last)
    batch = {
        int(version_id): (int(count), datetime.fromtimestamp(float(last.get(version_id, time.time())), tz=UTC))
        for version_id, count in counts.items()
    }
    try:
        _add(batch)
    except Exception:
        _put_back(client, counts, last)
        raise
    return len(batch)


def _add(batch):
    """Add {version id: (downloads, newest time)} to the rows, in one transaction."""
    with transaction.atomic():
        for version_id, (count, newest) in sorted(batch.items()):
            PackageVersion.objects.filter(pk=version_id).update(
                download_count=F("download_count") + count,
                last_downloaded_at=Greatest(Coalesce("last_downloaded_at", newest), newest),
            )


def _put_back(client, counts, last):
    with client.pipeline(transaction=False) as pipe:
        for version_id, count in counts.items():
            pipe.hincrby(redis_client.key(COUNTS), version_id, int(count))
        for version_id, moment in last.items():
            pipe.hsetnx(redis_client.key(LAST), version_id, moment)
        pipe.execute()
