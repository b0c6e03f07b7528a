"""The health breaker of remote upstreams (spec §3.4): 3 consecutive failures (connect,
time-out, TLS, 5xx) make an upstream unhealthy; until `retry_at` (30 s, doubling to 10 min) no
request goes to it except that one call after each back-off step, and cached content is served.
Any success, or a change of its URL or credentials, resets it."""

from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from registry.virtual.models import Upstream

FAILURES_BEFORE_UNHEALTHY = 3
FIRST_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 600


FIELDS = ("consecutive_failures", "last_error", "health_checked_at", "retry_at")


def refresh(upstream):
    """The upstream's health as the database has it now, on an Upstream read earlier (one the
    resolver remembered: registry.virtual.resolver._upstreams)."""
    upstream.refresh_from_db(fields=FIELDS)


def is_unhealthy(upstream, now=None):
    now = now or timezone.now()
    return upstream.retry_at is not None and upstream.retry_at > now


def failed(upstream, reason):
    now = timezone.now()
    failures = upstream.consecutive_failures + 1
    retry_at = None
    if failures >= FAILURES_BEFORE_UNHEALTHY:
        steps = failures - FAILURES_BEFORE_UNHEALTHY
        retry_at = now + timedelta(seconds=min(FIRST_BACKOFF_SECONDS * 2 ** min(steps, 10), MAX_BACKOFF_SECONDS))
    Upstream.objects.filter(pk=upstream.pk).update(
        consecutive_failures=F("consecutive_failures") + 1,
        last_error=reason[:255],
        health_checked_at=now,
        retry_at=retry_at,
    )
    upstream.consecutive_failures, upstream.last_error, upstream.retry_at = failures, reason[:255], retry_at


SUCCESS_RECORDED_EVERY_SECONDS = 60


def succeeded(upstream):
    """Resets a failing upstream at once; a healthy one's `health_checked_at` is brought up to
    date at most once a minute (so its health reads `healthy` with a recent time, without a write
    per request)."""
    now = timezone.now()
    recent = upstream.health_checked_at is not None and (
        now - upstream.health_checked_at < timedelta(seconds=SUCCESS_RECORDED_EVERY_SECONDS)
    )
    if upstream.consecutive_failures or upstream.retry_at or upstream.last_error or not recent:
        Upstream.objects.filter(pk=upstream.pk).update(
            consecutive_failures=0, last_error="", retry_at=None, health_checked_at=now
        )
        upstream.consecutive_failures, upstream.last_error, upstream.retry_at = 0, "", None
        upstream.health_checked_at = now


def reset(upstream):
    """After a change of URL or credentials (the caller saves the row)."""
    upstream.consecutive_failures, upstream.last_error = 0, ""
    upstream.retry_at = upstream.health_checked_at = None


def describe(upstream):
    """The `health` object of the management API."""
    if upstream.is_local:
        status = "healthy"
    elif is_unhealthy(upstream) or upstream.consecutive_failures >= FAILURES_BEFORE_UNHEALTHY:
        status = "unhealthy"
    elif upstream.health_checked_at is None:
        status = "unknown"
    else:
        status = "healthy"
    return {
        "status": status,
        "checked_at": upstream.health_checked_at,
        "last_error": upstream.last_error or None,
        "retry_at": upstream.retry_at,
    }
