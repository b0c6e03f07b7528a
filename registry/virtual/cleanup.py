"""The cleanup policy of a top-level group's virtual registries (spec §1.8): validation, and the
run that marks old cache entries for destruction (registry.tasks purges them and their blobs).

An hourly beat task (registry.tasks.run_due_virtual_cleanup_policies) runs every enabled policy
whose `next_run_at` has passed; a run marks, in batches, the group's cache entries whose last
download (else creation) is older than `keep_n_days_after_download`, records what it removed per
format, and moves `next_run_at` on by `cadence` days. Local packages are never touched.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from registry.virtual import changes
from registry.virtual.models import CacheEntry, VirtualCleanupPolicy

logger = logging.getLogger(__name__)
BATCH = 500
FIELDS = ("enabled", "keep_n_days_after_download", "cadence")


class PolicyInvalid(Exception):
    pass


def clean(data, partial):
    """The policy fields of a request body, checked; PolicyInvalid names the first bad one."""
    values = {}
    if "enabled" in data:
        enabled = data["enabled"]
        if isinstance(enabled, str) and enabled.lower() in ("true", "false"):
            enabled = enabled.lower() == "true"
        if not isinstance(enabled, bool):
            raise PolicyInvalid("enabled is invalid")
        values["enabled"] = enabled
    for name, allowed in (("keep_n_days_after_download", range(1, 366)), ("cadence", VirtualCleanupPolicy.CADENCES)):
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            raise PolicyInvalid(f"{name} does not have a valid value")
        values[name] = value
    if partial and not values:
        raise PolicyInvalid(f"{', '.join(FIELDS)} are missing, at least one parameter must be provided")
    return values


def save(policy, values):
    for name, value in values.items():
        setattr(policy, name, value)
    if policy.enabled and (policy.next_run_at is None or "cadence" in values):
        policy.next_run_at = timezone.now() + timedelta(days=policy.cadence)
    policy.save()
    return policy


def expired(policy, now):
    cutoff = now - timedelta(days=policy.keep_n_days_after_download)
    return (
        CacheEntry.objects.filter(upstream__group_id=policy.group_id, status=CacheEntry.Status.DEFAULT)
        .annotate(last_used=Coalesce("downloaded_at", "created_at"))
        .filter(last_used__lt=cutoff)
    )


def run(policy_id):
    """One run of a policy: mark what it deletes, record the metrics, schedule the next run."""
    now = timezone.now()
    policy = VirtualCleanupPolicy.objects.get(pk=policy_id)
    metrics = {}
    deleted_size = deleted_count = 0
    try:
        while True:
            with transaction.atomic():
                batch = list(
                    expired(policy, now).select_for_update(skip_locked=True).values_list("pk", flat=True)[:BATCH]
                )
                if not batch:
                    break
                rows = CacheEntry.objects.filter(pk__in=batch)
                for row in rows.values("upstream__format").annotate(n=Count("pk"), size=Sum("blob__size")):
                    into = metrics.setdefault(row["upstream__format"], {"deleted_entries_count": 0, "deleted_size": 0})
                    into["deleted_entries_count"] += row["n"]
                    into["deleted_size"] += row["size"] or 0
                    deleted_count += row["n"]
                    deleted_size += row["size"] or 0
                upstream_ids = set(rows.values_list("upstream_id", flat=True))
                rows.update(status=CacheEntry.Status.PENDING_DESTRUCTION)
                changes.upstreams_changed(upstream_ids)
        status, failure = "scheduled", ""
    except Exception as exc:  # recorded on the policy; the next run tries again
        logger.exception("virtual registry cleanup policy %s failed", policy_id)
        status, failure = "failed", exc.__class__.__name__
    VirtualCleanupPolicy.objects.filter(pk=policy.pk).update(
        status=status,
        failure_message=failure,
        last_run_at=now,
        last_run_deleted_size=deleted_size,
        last_run_deleted_entries_count=deleted_count,
        last_run_detailed_metrics=metrics,
        next_run_at=now + timedelta(days=policy.cadence),
    )
    return deleted_count


def due(now=None):
    now = now or timezone.now()
    return VirtualCleanupPolicy.objects.filter(enabled=True).filter(
        Q(next_run_at__isnull=True) | Q(next_run_at__lte=now)
    )
