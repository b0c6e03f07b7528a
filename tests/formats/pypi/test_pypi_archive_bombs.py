"""twine upload of a decompression bomb: a 400 in PyPI's error shape, quickly, nothing stored."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import AccessLevel
from packages_pypi.models import Distribution
from registry.models import Blob, Package, PackageFile, PackageVersion
from tests.bombs import InflationMeter, tar_gz_bomb, zip_with_members
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.pypi.dists import core_metadata
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024
PKG_INFO = core_metadata("my-pkg", "1.0.0")


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def developer(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return auth_headers(AccessTokenFactory(user=user).plaintext, "basic:__token__")


def upload(client, project, headers, data, file_name):
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "my-pkg",
        "version": "1.0.0",
        "filetype": "bdist_wheel" if file_name.endswith(".whl") else "sdist",
        "pyversion": "py3",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "content": SimpleUploadedFile(file_name, data, content_type="application/octet-stream"),
    }
    return client.post(f"/api/v4/projects/{project.pk}/packages/pypi", data=fields, **headers)


@pytest.mark.parametrize(
    ("bomb", "file_name", "error"),
    [
        (
            # PKG-INFO first, then 200 MiB of zeros: about 200 KB on the wire.
            tar_gz_bomb(200 * MiB, files={"my_pkg-1.0.0/PKG-INFO": PKG_INFO}),
            "my_pkg-1.0.0.tar.gz",
            "400 Bad request - source distribution exceeds the limit of 10485760 bytes when decompressed",
        ),
        (
            tar_gz_bomb(MiB, files={"my_pkg-1.0.0/PKG-INFO": PKG_INFO}, count=40),
            "my_pkg-1.0.0.tar.gz",
            "400 Bad request - source distribution exceeds the limit of 10485760 bytes when decompressed",
        ),
        (
            zip_with_members(60, files={"my_pkg-1.0.0.dist-info/METADATA": PKG_INFO}),
            "my_pkg-1.0.0-py3-none-any.whl",
            "400 Bad request - wheel exceeds the limit of 50 members",
        ),
    ],
    ids=["sdist-one-huge-member", "sdist-many-members", "wheel-too-many-members"],
)
def test_a_bomb_is_400_and_stores_nothing(
    client, project, developer, blob_dir, settings, monkeypatch, bomb, file_name, error
):
    from registry import archives

    settings.PACKAGE_MAX_FILE_SIZE = {**settings.PACKAGE_MAX_FILE_SIZE, "pypi": MiB}  # budget: 10 MiB
    monkeypatch.setattr(archives, "MAX_MEMBERS", 50)
    assert len(bomb) < MiB
    meter = InflationMeter().install(monkeypatch)
    response = upload(client, project, developer, bomb, file_name)
    assert response.status_code == 400, response.content
    assert response.json()["message"] == error
    assert meter.most <= 10 * MiB + archives.READ_SIZE  # stopped at the budget, not at the bomb's size
    assert Package.objects.count() == PackageVersion.objects.count() == PackageFile.objects.count() == 0
    assert Blob.objects.count() == Distribution.objects.count() == 0
    assert stored_objects(blob_dir) == []
