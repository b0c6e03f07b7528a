"""When each access and deploy token was last used (`last_used_at`): recorded at most once per
PACKHOUSE_TOKEN_LAST_USED_INTERVAL seconds (60) per token and process, by one of two ways.

- `touch(row)`: a request Django authenticates (accounts.authentication): when the row's last use
  is due, one UPDATE of the row, at once.
- `note(credential)`: an answer replayed before Django (registry.response_cache), which runs no
  query: one Redis call, HSET of the time into the hash `tokens:last-used` under the token's name
  (`credential_of`: `access:<id>`, `deploy:<id>`). `flush()` writes the noted times to the rows
  in one transaction, never moving one back: the `flush_token_last_use` beat task, every
  PACKHOUSE_TOKEN_LAST_USED_FLUSH_SECONDS (10 by default).

So while beat runs, a token's `last_used_at` is at most TOKEN_LAST_USED_INTERVAL +
TOKEN_LAST_USED_FLUSH_SECONDS behind its latest use (70 s by default), whichever way it was used.
What can be lost: the times of one batch when the flusher dies between taking them from Redis and
committing them (a database failure puts them back); the token's next use records again. When
Redis refuses a note, the replay gives way to Django, which records the use with its UPDATE.
"""

import logging
import time
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts import redis_client

logger = logging.getLogger(__name__)

NOTED = "tokens:last-used"  # hash: credential_of(row) -> unix time of its latest noted use


def _models():
    from accounts.models import AccessToken, DeployToken

    return {"access": AccessToken, "deploy": DeployToken}


def credential_of(row):
    """The name a note gives a token row (`access:<id>`, `deploy:<id>`); None for anything else."""
    for kind, model in _models().items():
        if isinstance(row, model):
            return f"{kind}:{row.pk}"
    return None


def next_due(row):
    """When the row's next use is to be recorded (unix time; 0: now, it was never recorded)."""
    if row.last_used_at is None:
        return 0.0
    return row.last_used_at.timestamp() + settings.TOKEN_LAST_USED_INTERVAL


def touch(row):
    """Record a use of the row Django authenticated, when due (one UPDATE)."""
    now = timezone.now()
    interval = timedelta(seconds=settings.TOKEN_LAST_USED_INTERVAL)
    if row.last_used_at is None or now - row.last_used_at >= interval:
        type(row)._default_manager.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now


def note(credential, moment=None):
    """Record a use of the token named `credential` (credential_of) without a query: one Redis
    call. False when there is no Redis or it refused (the caller then lets Django record it)."""
    client = redis_client.client()
    if client is None:
        return False
    try:
        client.hset(redis_client.key(NOTED), credential, repr(moment if moment is not None else time.time()))
    except redis.RedisError as exc:
        logger.warning("token use not noted: Redis refused it (%s)", exc.__class__.__name__)
        return False
    return True


def flush():
    """Write the noted uses to the tokens' rows; the number of tokens written (a failed write puts
    them back: accounts.redis_client.drain_hash)."""
    return redis_client.drain_hash(NOTED, _write)


def _write(noted):
    models = _models()
    with transaction.atomic():
        for credential, moment in sorted(noted.items()):
            kind, _, pk = credential.partition(":")
            if kind not in models or not pk.isdigit():
                continue
            when = datetime.fromtimestamp(float(moment), tz=UTC)
            models[kind].objects.filter(pk=int(pk)).update(last_used_at=Greatest(Coalesce("last_used_at", when), when))
