"""What `manage.py fsck` checks: the rows and the objects of the blob store agree.

- every Blob row has its object, of the row's size (and, with `deep`, of the row's sha256: every
  object is read whole);
- every object under blobs/ has a Blob row, or is an orphan younger than the grace period (an
  upload in flight, or one the orphan sweep will remove); an older one is a problem;
- every package file points at a Blob row (the foreign key says so; a restore or a hand-made
  change can still break it).

The store is listed once (its keys and sizes held in memory: about 100 bytes an object) and the
rows are read in batches. A problem is a line naming the blob by its digest, never a secret.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from registry.errors import StorageUnavailable
from registry.models import Blob, PackageFile
from registry.storage import BlobStore

BATCH = 2000


@dataclass
class Report:
    blobs: int = 0
    objects: int = 0
    young_orphans: int = 0
    files: int = 0
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        return (
            f"{self.blobs} blobs, {self.objects} objects, {self.files} package files, "
            f"{self.young_orphans} orphan objects within the grace period, {len(self.problems)} problems"
        )


def check(deep=False, grace=None, store=None):
    store = store or BlobStore()
    report = Report()
    grace = grace if grace is not None else timedelta(seconds=settings.BLOB_GRACE_SECONDS)
    cutoff = (timezone.now() - grace).timestamp()
    listed = {}
    for stored in store.objects():
        listed[stored.key] = stored
    report.objects = len(listed)

    seen = set()
    for blob in Blob.objects.order_by().iterator(chunk_size=BATCH):
        report.blobs += 1
        key = blob.key
        seen.add(key)
        stored = listed.get(key)
        if stored is None:
            report.problems.append(f"blob {blob.sha256}: object {key} is missing")
            continue
        if stored.size != blob.size:
            report.problems.append(f"blob {blob.sha256}: object is {stored.size} bytes, the row says {blob.size}")
            continue
        if deep:
            try:
                actual = store.sha256_of(blob)
            except StorageUnavailable:
                report.problems.append(f"blob {blob.sha256}: object could not be read")
                continue
            if actual != blob.sha256:
                report.problems.append(f"blob {blob.sha256}: object's bytes have sha256 {actual}")

    for key, stored in listed.items():
        if key in seen:
            continue
        if stored.modified > cutoff:
            report.young_orphans += 1
        else:
            report.problems.append(f"object {key} has no blob row (an orphan older than the grace period)")

    report.files = PackageFile.objects.count()
    dangling = (
        PackageFile.objects.annotate(has_blob=Exists(Blob.objects.filter(pk=OuterRef("blob_id"))))
        .filter(has_blob=False)
        .values_list("pk", "blob_id")
    )
    for pk, blob_id in dangling.iterator(chunk_size=BATCH):
        report.problems.append(f"package file {pk}: points at blob {blob_id}, which has no row")
    return report
