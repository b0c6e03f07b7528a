"""A full disk is 507 and leaves nothing behind: no half-written spool, no partial object, no row.

The spool and the blob store are put on real 1 MiB tmpfs mounts (root, as the test machines run)."""

import subprocess
from pathlib import Path

import pytest

from accounts.roles import AccessLevel
from registry.models import Package
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def developer(client):
    project = ProjectFactory()
    user = MembershipFactory(project=project, access_level=AccessLevel.DEVELOPER).user
    return project, auth_headers(AccessTokenFactory(user=user).plaintext)


def upload(client, project, headers, size):
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    return client.put(url, data=b"x" * size, content_type="application/octet-stream", **headers)


def test_a_full_spool_disk_is_507_and_keeps_nothing(client, settings, tiny_disk, developer):
    project, headers = developer
    settings.SPOOL_DIR = tiny_disk
    response = upload(client, project, headers, 2 * 1024 * 1024)
    assert response.status_code == 507, response.content
    assert list(Path(tiny_disk).iterdir()) == []
    assert not Package.objects.filter(project=project).exists()
    assert upload(client, project, headers, 1024).status_code == 201  # room again for a small one


def test_a_full_blob_disk_is_507_and_leaves_no_partial_object(client, settings, tiny_disk, developer, tmp_path):
    project, headers = developer
    settings.SPOOL_DIR = tmp_path / "spool"  # another filesystem: the object is copied, not linked
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tiny_disk}},
    }
    response = upload(client, project, headers, 2 * 1024 * 1024)
    assert response.status_code == 507, response.content
    assert [path for path in Path(tiny_disk).rglob("*") if path.is_file()] == []
    assert not Package.objects.filter(project=project).exists()
    assert list(Path(settings.SPOOL_DIR).iterdir()) == []
