"""`manage.py fsck [--deep]` on disk and on S3 (SeaweedFS): each invariant broken on purpose is
reported, with a non-zero exit; a consistent store passes. A download of a blob whose object
went missing behind Packhouse's back is 503 (never 404, never a link to nothing)."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.roles import AccessLevel
from registry.models import Blob, PackageFile
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


class Store:
    """The test's blob store, whichever it is, seen from outside Packhouse."""

    def __init__(self, blob_dir=None, bucket=None):
        self.blob_dir = blob_dir
        self.bucket = bucket

    def put(self, key, data):
        if self.bucket:
            self.bucket.server.client().put_object(Bucket=self.bucket.name, Key=key, Body=data)
        else:
            path = self.blob_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def delete(self, key):
        if self.bucket:
            self.bucket.server.client().delete_object(Bucket=self.bucket.name, Key=key)
        else:
            (self.blob_dir / key).unlink()


@pytest.fixture(params=["disk", "s3"])
def store(request, blob_dir):
    if request.param == "s3":
        return Store(bucket=request.getfixturevalue("s3_storage"))
    return Store(blob_dir=blob_dir)


@pytest.fixture
def published(client):
    """Two generic files; returns (url of the first, headers)."""
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    base = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0"
    for name, data in (("a.bin", b"first file " * 100), ("b.bin", b"second file " * 100)):
        assert client.put(f"{base}/{name}", data=data, content_type="application/octet-stream", **headers).status_code
    return f"{base}/a.bin", headers


def fsck(*args):
    out = io.StringIO()
    try:
        call_command("fsck", *args, stdout=out)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


def blob_of(file_name):
    return PackageFile.objects.get(file_name=file_name).blob


def test_a_consistent_store_passes(store, published):
    code, output = fsck("--deep")
    assert code == 0, output
    assert output.strip() == (
        "ok: 2 blobs, 2 objects, 2 package files, 0 orphan objects within the grace period, 0 problems"
    )


def test_a_missing_object_is_503_on_download_and_reported(client, store, published):
    url, headers = published
    blob = blob_of("a.bin")
    assert client.get(url, **headers).status_code in (200, 302)
    store.delete(blob.key)

    assert client.get(url, **headers).status_code == 503
    assert client.head(url, **headers).status_code == 503
    code, output = fsck()
    assert code == 1
    assert f"blob {blob.sha256}: object {blob.key} is missing" in output
    assert output.splitlines()[-1].startswith("FAILED: ") and output.splitlines()[-1].endswith(", 1 problems")


def test_an_object_of_the_wrong_size_is_reported_and_not_served(client, store, published):
    url, headers = published
    blob = blob_of("a.bin")
    store.put(blob.key, b"truncated")
    assert client.get(url, **headers).status_code == 503
    assert client.head(url, **headers).status_code == 503
    code, output = fsck()
    assert code == 1
    assert f"blob {blob.sha256}: object is 9 bytes, the row says {blob.size}" in output


def test_changed_bytes_of_the_right_size_are_found_by_deep_only(store, published):
    blob = blob_of("a.bin")
    store.put(blob.key, b"X" * blob.size)
    assert fsck()[0] == 0
    code, output = fsck("--deep")
    assert code == 1
    assert f"blob {blob.sha256}: object's bytes have sha256 " in output


def test_an_object_without_a_row_is_an_orphan_until_the_grace_period_ends(store, published, settings):
    key = "blobs/ab/cd/" + "abcd" * 16
    store.put(key, b"nobody's")
    settings.BLOB_GRACE_SECONDS = 3600
    code, output = fsck()
    assert code == 0, output
    assert "1 orphan objects within the grace period" in output
    settings.BLOB_GRACE_SECONDS = -5  # as if the object were older than the grace period
    code, output = fsck()
    assert code == 1
    assert f"object {key} has no blob row (an orphan older than the grace period)" in output


def test_a_package_file_whose_blob_row_is_gone_is_reported(store, published):
    package_file = PackageFile.objects.get(file_name="b.bin")
    with connection.cursor() as cursor:  # the foreign key is checked at commit; the test never commits
        cursor.execute("DELETE FROM registry_blob WHERE id = %s", [package_file.blob_id])
    assert not Blob.objects.filter(pk=package_file.blob_id).exists()
    code, output = fsck()
    assert code == 1
    assert f"package file {package_file.pk}: points at blob {package_file.blob_id}, which has no row" in output
    # and its object, now without a row, is an orphan within the grace period
    assert "1 orphan objects within the grace period" in output
    with connection.cursor() as cursor:  # leave the constraint kept for pytest-django's teardown check
        cursor.execute("DELETE FROM registry_packagefile WHERE id = %s", [package_file.pk])


def test_an_unreachable_store_is_exit_2(s3_storage, published, capsys):
    s3_storage.server.stop()
    with pytest.raises(SystemExit) as exit:
        call_command("fsck")
    assert exit.value.code == 2
