"""The write service and the blob store: atomic publishes, one object per content, no orphans."""

import hashlib

import pytest
from django.db import connection

from accounts.authentication import principal_for_token
from registry import epochs, formats, services
from registry.errors import Conflict, TooLarge
from registry.formats import DuplicateRule, FileDraft, PackageDraft, PackageFormat
from registry.models import Blob, Package, PackageFile, PackageVersion
from registry.spool import spool_bytes, spool_stream
from tests.factories import AccessTokenFactory, AdminFactory, ProjectFactory
from tests.helpers import stored_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return principal_for_token(AccessTokenFactory(user=AdminFactory()).plaintext)


class ExplodingFormat(PackageFormat):
    """A format whose own rows fail to save: the whole publish must roll back."""

    name = "generic"

    def save_format_rows(self, version, draft, files):
        raise RuntimeError("format rows could not be written")


class StrictFormat(PackageFormat):
    name = "generic"
    duplicate_rule = DuplicateRule.REJECT_VERSION


def test_failed_publish_leaves_no_row_and_no_object(admin, blob_dir):
    project = ProjectFactory()
    with spool_bytes(b"will be rolled back") as spool, pytest.raises(RuntimeError):
        services.publish(project, admin, ExplodingFormat(), PackageDraft("p", "1", files=[FileDraft("f", spool)]))
    assert Package.objects.count() == 0
    assert Blob.objects.count() == 0
    assert stored_objects(blob_dir) == []


def test_rollback_keeps_an_object_that_a_committed_blob_still_uses(admin, blob_dir):
    project = ProjectFactory()
    generic = formats.get("generic")
    with spool_bytes(b"shared content") as spool:
        services.publish(project, admin, generic, PackageDraft("a", "1", files=[FileDraft("f", spool)]))
    with spool_bytes(b"shared content") as spool, pytest.raises(RuntimeError):
        services.publish(project, admin, ExplodingFormat(), PackageDraft("b", "1", files=[FileDraft("f", spool)]))
    assert Blob.objects.count() == 1
    assert len(stored_objects(blob_dir)) == 1


def test_reject_version_rule_refuses_a_second_publish(admin):
    project = ProjectFactory()
    for content in (b"one", b"two"):
        with spool_bytes(content) as spool:
            draft = PackageDraft("p", "1.0", files=[FileDraft(f"{content.decode()}.bin", spool)])
            if content == b"one":
                services.publish(project, admin, StrictFormat(), draft)
            else:
                with pytest.raises(Conflict):
                    services.publish(project, admin, StrictFormat(), draft)
    assert PackageVersion.objects.count() == 1
    assert PackageFile.objects.count() == 1


def test_a_version_marked_for_destruction_frees_its_name(admin):
    project = ProjectFactory()
    with spool_bytes(b"one") as spool:
        version, _ = services.publish(
            project, admin, StrictFormat(), PackageDraft("p", "1", files=[FileDraft("f", spool)])
        )
    services.mark_version_for_destruction(version)
    assert services.find_file(project, StrictFormat(), "p", "1", "f") is None
    with spool_bytes(b"two") as spool:
        services.publish(project, admin, StrictFormat(), PackageDraft("p", "1", files=[FileDraft("f", spool)]))
    assert services.find_file(project, StrictFormat(), "p", "1", "f").blob.sha256 == hashlib.sha256(b"two").hexdigest()


def test_every_write_changes_the_package_epochs(admin):
    project = ProjectFactory()
    generic = formats.get("generic")
    keys = epochs.package_keys("generic", "p")
    seen = [tuple(epochs.current(keys))]
    for content in (b"1", b"2"):
        with spool_bytes(content) as spool:
            services.publish(project, admin, generic, PackageDraft("p", "1", files=[FileDraft("f", spool)]))
        seen.append(tuple(epochs.current(keys)))
    assert len(set(seen)) == 3


def test_spool_hashes_while_streaming_and_enforces_the_cap(tmp_path):
    import io

    data = b"abc" * 100_000
    with spool_stream(io.BytesIO(data), max_size=len(data)) as spool:
        assert spool.size == len(data)
        assert spool.sha256 == hashlib.sha256(data).hexdigest()
        assert spool.sha512 == hashlib.sha512(data).hexdigest()
        assert spool.read() == data
    with pytest.raises(TooLarge):
        spool_stream(io.BytesIO(data), max_size=len(data) - 1)
    with pytest.raises(TooLarge):  # an honest Content-Length over the cap is refused before reading
        spool_stream(io.BytesIO(b""), max_size=10, length=11)


def test_blob_lock_is_a_postgres_advisory_lock():
    assert connection.vendor == "postgresql"
