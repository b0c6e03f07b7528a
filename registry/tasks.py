"""Background work on Celery (in-process when no Redis is configured).

- purge_pending_destruction: remove rows of versions and files marked for destruction, and the
  blobs nobody references any more (after a grace period), objects after the row.
- collect_orphan_objects: objects in storage with no Blob row (a crashed upload), after a grace
  period.
- expire_stale_jobs: CI jobs left running longer than PACKHOUSE_JOB_TIMEOUT: their tokens die.
- flush_download_counts: downloads counted in Redis are added to their versions' rows, and the
  virtual registries' replayed hits to their cache entries (registry.virtual.hit_counts).
- flush_token_last_use: tokens' uses noted in Redis by replayed answers are written to their
  rows' `last_used_at` (accounts.last_use).
- announce_pending_epoch_changes: package writes made while Redis was unreachable change their
  packages' epochs once it is back (registry.epochs.announce_pending).
- run_due_cleanup_policies (beat) -> apply_cleanup_policy(project_id): a project's cleanup
  policy (registry.cleanup) marks versions and files pending destruction, then purges.

Every task works in bounded batches, takes row locks with SKIP LOCKED so two runners never
remove the same thing twice, and is safe to run again after being killed mid-way.
"""

import logging
import os
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts import acting, audit, last_use
from accounts.models import CiJob
from accounts.signals import credential_changed, credential_changing
from registry import cleanup, download_counts, epochs, formats, metrics, services
from registry.models import Blob, CacheEntry, CleanupPolicy, PackageFile, PackageVersion, Status
from registry.storage import BlobStore, lock_digest
from registry.virtual import hit_counts

logger = logging.getLogger(__name__)
BATCH = 500


def _grace():
    return timedelta(seconds=settings.BLOB_GRACE_SECONDS)


def _unless_unreachable(work, left):
    """`work()`, or 0 when Redis cannot be reached (epochs.FAILURES): what it would have moved
    is `left` for the next beat, and the log says so."""
    try:
        return work()
    except epochs.FAILURES as exc:
        logger.warning("%s: %s", left, exc.__class__.__name__)
        return 0


@shared_task
def flush_download_counts():
    """Beat: move the downloads counted in Redis to the database (registry.download_counts)."""
    return _unless_unreachable(lambda: download_counts.flush() + hit_counts.flush(), "download counts stay pending")


@shared_task
def flush_token_last_use():
    """Beat: write the tokens' uses noted in Redis to their rows (accounts.last_use)."""
    return _unless_unreachable(last_use.flush, "token uses stay pending")


@shared_task
def announce_pending_epoch_changes():
    return _unless_unreachable(epochs.announce_pending, "epochs still cannot be changed")


@shared_task
def purge_pending_destruction(batch=BATCH):
    """Delete rows marked pending_destruction, then the blobs left unreferenced."""
    removed_files = removed_versions = 0
    with transaction.atomic():
        file_ids = list(
            PackageFile.objects.select_for_update(skip_locked=True)
            .filter(status=PackageFile.FileStatus.PENDING_DESTRUCTION)
            .values_list("pk", flat=True)[:batch]
        )
        removed_files, _ = PackageFile.objects.filter(pk__in=file_ids).delete()
    with transaction.atomic():
        versions = list(
            PackageVersion.objects.select_for_update(skip_locked=True)
            .select_related("package")
            .filter(status=Status.PENDING_DESTRUCTION)[:batch]
        )
        for version in versions:
            package_format = formats.find(version.package.format)
            if package_format is not None:
                package_format.on_version_deleted(version)
            version.files.all().delete()
            version.delete()
            removed_versions += 1
    with transaction.atomic():
        entry_ids = list(
            CacheEntry.objects.select_for_update(skip_locked=True)
            .filter(status=CacheEntry.Status.PENDING_DESTRUCTION)
            .values_list("pk", flat=True)[:batch]
        )
        removed_files += CacheEntry.objects.filter(pk__in=entry_ids).delete()[0]
    removed_blobs = collect_unreferenced_blobs(batch=batch)
    if removed_files or removed_versions or removed_blobs:
        logger.info("purged %d files, %d versions, %d blobs", removed_files, removed_versions, removed_blobs)
    return {"files": removed_files, "versions": removed_versions, "blobs": removed_blobs}


def collect_unreferenced_blobs(batch=BATCH, grace=None):
    """Blobs no file points at, older than the grace period: row first, then the object."""
    cutoff = timezone.now() - (grace if grace is not None else _grace())
    store = BlobStore()
    removed = 0
    candidates = (
        Blob.objects.filter(created_at__lt=cutoff)
        .annotate(used=Exists(PackageFile.objects.filter(blob=OuterRef("pk"))))
        .annotate(cached=Exists(CacheEntry.objects.filter(blob=OuterRef("pk"))))
        .filter(used=False, cached=False)
        .values_list("sha256", flat=True)[:batch]
    )
    for sha256 in list(candidates):
        with transaction.atomic():
            lock_digest(sha256)
            blob = Blob.objects.select_for_update(skip_locked=True).filter(sha256=sha256).first()
            if blob is None or PackageFile.objects.filter(blob=blob).exists() or blob.cache_entries.exists():
                continue
            blob.delete()
            transaction.on_commit(lambda key=blob.key: store.storage.delete(key))
            removed += 1
    return removed


def _sweep_spool(cutoff):
    removed = 0
    try:
        entries = list(os.scandir(settings.SPOOL_DIR))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime <= cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # finished (and removed) meanwhile
            continue
    return removed


@shared_task
def collect_orphan_objects(grace=None):
    """Objects under blobs/ with no Blob row (an upload that died before its commit), what is left
    of multipart uploads stopped mid-way (S3), and spool files a killed upload left in SPOOL_DIR
    (a live upload writes to its spool, so its file is never older than the grace period)."""
    cutoff = (timezone.now() - (grace if grace is not None else _grace())).timestamp()
    removed = _sweep_spool(cutoff)
    store = BlobStore()
    removed += store.abort_stale_uploads(cutoff)
    for stored in store.objects():
        if stored.modified > cutoff:
            continue
        sha256 = stored.name.split(".", 1)[0]
        with transaction.atomic():
            if len(sha256) == 64:
                lock_digest(sha256)
            if stored.name.endswith(".part") or not Blob.objects.filter(sha256=sha256).exists():
                store.delete_object(stored.key)
                removed += 1
    if removed:
        logger.info("removed %d orphan objects", removed)
    return removed


@shared_task
def expire_stale_jobs():
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_TIMEOUT_SECONDS)
    with transaction.atomic(), acting.as_system("job timeout"):
        stale = CiJob.objects.select_for_update().filter(status=CiJob.Status.RUNNING, started_at__lt=cutoff)
        jobs = list(stale.select_related("project", "user"))
        digests = [job.token_digest for job in jobs if job.token_digest]
        expired = stale.update(status=CiJob.Status.FAILED, finished_at=timezone.now())
        credential_changing.send(sender=CiJob, digests=digests)
        credential_changed.send(sender=CiJob, digests=digests)
        for job in jobs:
            job.status = CiJob.Status.FAILED
            audit.job_finished(job)
    if expired:
        logger.info("expired %d stale CI jobs", expired)
    return expired


# --- cleanup policies ---------------------------------------------------------------------


def _chunks(ids, size):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _mark_versions(ids):
    """Mark one batch; rows another runner holds are skipped (it is marking them)."""
    names = []
    with transaction.atomic():
        versions = list(
            PackageVersion.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("package")
            .filter(pk__in=ids)
            .exclude(status=Status.PENDING_DESTRUCTION)
            .order_by("package_id", "pk")  # packages locked in one order: no deadlock between runners
        )
        for version in versions:
            services.mark_version_for_destruction(version)
            names.append(f"{version.package.name}@{version.version}")
    return names


def _mark_files(ids):
    names = []
    with transaction.atomic():
        files = list(
            PackageFile.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("version__package")
            .filter(pk__in=ids, status=PackageFile.FileStatus.DEFAULT)
            .exclude(version__status=Status.PENDING_DESTRUCTION)
            .order_by("version__package_id", "pk")
        )
        for package_file in files:
            services.mark_file_for_destruction(package_file)
            names.append(f"{package_file.version.package.name}@{package_file.version.version}/{package_file.file_name}")
    return names


@shared_task
def apply_cleanup_policy(project_id, purge=True):
    """Apply one project's policy: mark what it removes (bounded batches), then purge.

    Safe to run twice at once (SKIP LOCKED, status re-checked under the lock) and idempotent:
    a second run finds nothing more to remove.
    """
    policy = CleanupPolicy.objects.filter(project_id=project_id).select_related("project").first()
    if policy is None:
        return {"versions": 0, "files": 0}
    with acting.as_system("cleanup policy"):
        return _apply_cleanup_policy(policy, purge)


def _apply_cleanup_policy(policy, purge):
    batch = max(1, settings.CLEANUP_BATCH_SIZE)
    plan = cleanup.plan(policy)
    versions = []
    for ids in _chunks(plan.version_ids, batch):
        versions += _mark_versions(ids)
    files = []
    for ids in _chunks(plan.file_ids, batch):
        files += _mark_files(ids)
    CleanupPolicy.objects.filter(pk=policy.pk).update(
        next_run_at=timezone.now() + timedelta(seconds=settings.CLEANUP_INTERVAL_SECONDS)
    )
    metrics.count_cleanup_run()
    logger.info(
        "cleanup policy of project %s (%s): marked %d versions, %d files for destruction%s",
        policy.project_id,
        policy.project.full_path,
        len(versions),
        len(files),
        f": {', '.join(versions + files)[:2000]}" if versions or files else "",
    )
    purged = {"files": 0, "versions": 0, "blobs": 0}
    if purge:  # also what a run killed before its purge left pending
        while True:
            result = purge_pending_destruction(batch=batch)
            for key, count in result.items():
                purged[key] += count
            if not any(result.values()):
                break
    logger.info(
        "cleanup policy of project %s: purged %d versions, %d files, %d blobs",
        policy.project_id,
        purged["versions"],
        purged["files"],
        purged["blobs"],
    )
    return {"versions": len(versions), "files": len(files), "purged": purged}


@shared_task
def run_due_cleanup_policies(limit=None, inline=False):
    """Beat: claim the due policies (next_run_at unset or past), bounded, and apply each.

    A claim moves next_run_at forward under a SKIP LOCKED row lock, so two runners never
    pick the same policy; the apply sets it again when it is done. `inline` applies them in
    this process (manage.py run_cleanup) instead of queueing them.
    """
    now = timezone.now()
    limit = limit or settings.CLEANUP_POLICIES_PER_RUN
    with transaction.atomic():
        due = list(
            cleanup.active_policies()
            .select_for_update(skip_locked=True)
            .filter(Q(next_run_at__isnull=True) | Q(next_run_at__lte=now))
            .order_by(F("next_run_at").asc(nulls_first=True), "pk")[:limit]
        )
        claimed_until = now + timedelta(seconds=settings.CLEANUP_INTERVAL_SECONDS)
        CleanupPolicy.objects.filter(pk__in=[policy.pk for policy in due]).update(next_run_at=claimed_until)
    for policy in due:
        if inline:
            apply_cleanup_policy(policy.project_id)
        else:
            apply_cleanup_policy.delay(policy.project_id)
    if due:
        logger.info("started %d cleanup policies", len(due))
    return len(due)


@shared_task
def purge_old_audit_events():
    """Beat: remove audit events older than PACKHOUSE_AUDIT_RETENTION_DAYS."""
    removed = audit.purge_expired()
    if removed:
        logger.info("removed %d audit events past their retention", removed)
    return removed


@shared_task
def deliver_webhook(delivery_id):
    """Send one webhook delivery (registry.webhooks); a failed one queues its next attempt."""
    from registry import webhooks

    delivery = webhooks.deliver(delivery_id)
    return delivery.status_code if delivery is not None else None


@shared_task
def run_due_virtual_cleanup_policies():
    """Hourly: every enabled cleanup policy of virtual registries whose time has come."""
    from registry.virtual import cleanup as virtual_cleanup

    for policy_id in list(virtual_cleanup.due().values_list("pk", flat=True)):
        virtual_cleanup.run(policy_id)
    purge_pending_destruction()
