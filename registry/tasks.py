"""Background work on Celery (in-process when no Redis is configured).

- purge_pending_destruction: remove rows of versions and files marked for destruction, and the
  blobs nobody references any more (after a grace period), objects after the row.
- collect_orphan_objects: objects in storage with no Blob row (a crashed upload), after a grace
  period.
- expire_stale_jobs: CI jobs left running longer than PACKHOUSE_JOB_TIMEOUT: their tokens die.

Every task works in bounded batches, takes row locks with SKIP LOCKED so two runners never
remove the same thing twice, and is safe to run again after being killed mid-way.
"""

import logging
import os
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import CiJob
from registry import formats
from registry.celery import app
from registry.models import Blob, PackageFile, PackageVersion, Status
from registry.storage import BlobStore, lock_digest

logger = logging.getLogger(__name__)
BATCH = 500


def _grace():
    return timedelta(seconds=settings.BLOB_GRACE_SECONDS)


@app.task
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
        .filter(used=False)
        .values_list("sha256", flat=True)[:batch]
    )
    for sha256 in list(candidates):
        with transaction.atomic():
            lock_digest(sha256)
            blob = Blob.objects.select_for_update(skip_locked=True).filter(sha256=sha256).first()
            if blob is None or PackageFile.objects.filter(blob=blob).exists():
                continue
            blob.delete()
            transaction.on_commit(lambda key=blob.key: store.storage.delete(key))
            removed += 1
    return removed


@app.task
def collect_orphan_objects(grace=None):
    """Objects under blobs/ with no Blob row (an upload that died before its commit)."""
    store = BlobStore()
    if not store.is_local:
        return 0
    root = store.storage.path("blobs")
    cutoff = (timezone.now() - (grace if grace is not None else _grace())).timestamp()
    removed = 0
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.getmtime(path) > cutoff:
                continue
            sha256 = name.split(".", 1)[0]
            with transaction.atomic():
                if len(sha256) == 64:
                    lock_digest(sha256)
                if name.endswith(".part") or not Blob.objects.filter(sha256=sha256).exists():
                    os.unlink(path)
                    removed += 1
    if removed:
        logger.info("removed %d orphan objects", removed)
    return removed


@app.task
def expire_stale_jobs():
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_TIMEOUT_SECONDS)
    expired = CiJob.objects.filter(status=CiJob.Status.RUNNING, started_at__lt=cutoff).update(
        status=CiJob.Status.FAILED, finished_at=timezone.now()
    )
    if expired:
        logger.info("expired %d stale CI jobs", expired)
    return expired
