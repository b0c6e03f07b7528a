"""Background tasks: pending destruction is purged, unreferenced blobs and orphan objects go
after the grace period, stale jobs die."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.authentication import principal_for_token
from accounts.models import CiJob
from registry import formats, services, tasks
from registry.formats import FileDraft, PackageDraft
from registry.models import Blob, PackageFile, PackageVersion
from registry.spool import spool_bytes
from tests.factories import AccessTokenFactory, AdminFactory, CiJobFactory, ProjectFactory
from tests.helpers import stored_objects

pytestmark = pytest.mark.django_db


def publish(project, name, content):
    admin = principal_for_token(AccessTokenFactory(user=AdminFactory()).plaintext)
    with spool_bytes(content) as spool:
        return services.publish(
            project, admin, formats.get("generic"), PackageDraft(name, "1", files=[FileDraft("f", spool)])
        )


def test_purge_removes_marked_versions_and_unreferenced_blobs(blob_dir, settings, django_capture_on_commit_callbacks):
    settings.BLOB_GRACE_SECONDS = 0
    project = ProjectFactory()
    doomed, _ = publish(project, "doomed", b"only here")
    publish(project, "kept", b"kept bytes")
    publish(project, "shares", b"only here")  # same content as doomed: the blob must stay
    services.mark_version_for_destruction(doomed)

    assert tasks.purge_pending_destruction() == {"files": 1, "versions": 1, "blobs": 0}
    assert not PackageVersion.objects.filter(pk=doomed.pk).exists()
    assert Blob.objects.count() == 2
    assert len(stored_objects(blob_dir)) == 2

    shares = PackageVersion.objects.get(package__name="shares")
    services.mark_file_for_destruction(shares.files.get())
    with django_capture_on_commit_callbacks(execute=True):  # objects go after the row's commit
        result = tasks.purge_pending_destruction()
    assert result == {"files": 1, "versions": 0, "blobs": 1}
    assert Blob.objects.count() == 1
    assert len(stored_objects(blob_dir)) == 1
    assert tasks.purge_pending_destruction() == {"files": 0, "versions": 0, "blobs": 0}


def test_unreferenced_blobs_wait_for_the_grace_period(settings):
    settings.BLOB_GRACE_SECONDS = 3600
    project = ProjectFactory()
    version, _ = publish(project, "p", b"bytes")
    PackageFile.objects.filter(version=version).delete()
    assert tasks.collect_unreferenced_blobs() == 0
    Blob.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert tasks.collect_unreferenced_blobs() == 1


def test_orphan_objects_without_a_row_are_swept(blob_dir, settings, tmp_path):
    settings.BLOB_GRACE_SECONDS = 0
    settings.SPOOL_DIR = tmp_path / "spool"
    publish(ProjectFactory(), "p", b"referenced")
    orphan = blob_dir / "blobs" / "ab" / "cd" / ("abcd" + "0" * 60)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crashed upload")
    assert tasks.collect_orphan_objects() == 1
    assert len(stored_objects(blob_dir)) == 1


def test_stale_jobs_are_failed_and_their_tokens_die(settings):
    settings.JOB_TIMEOUT_SECONDS = 60
    fresh = CiJobFactory()
    stale = CiJobFactory(started_at=timezone.now() - timedelta(minutes=5))
    assert tasks.expire_stale_jobs() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == CiJob.Status.FAILED
    assert fresh.status == CiJob.Status.RUNNING
