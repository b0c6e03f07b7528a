"""npm publish of a decompression bomb: a 400 in npm's error shape, quickly, nothing stored."""

import json

import pytest

from accounts.roles import AccessLevel
from registry import archives
from registry.models import Blob, Package, PackageFile, PackageVersion
from tests.bombs import InflationMeter, tar_gz_bomb
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.npm.npmdocs import publish_document
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db

NAME = "@acme/left-pad"
MiB = 1024 * 1024
MANIFEST = json.dumps({"name": NAME, "version": "1.0.0"}).encode()


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="web")


@pytest.fixture
def developer(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")


@pytest.mark.parametrize(
    "bomb",
    [
        tar_gz_bomb(200 * MiB, files={"package/package.json": MANIFEST}),  # one member, ~200 KB
        tar_gz_bomb(MiB, files={"package/package.json": MANIFEST}, count=40),  # each member fits
    ],
    ids=["one-huge-member", "many-members"],
)
def test_a_tarball_bomb_is_400_and_stores_nothing(client, project, developer, blob_dir, settings, monkeypatch, bomb):
    settings.PACKAGE_MAX_FILE_SIZE = {**settings.PACKAGE_MAX_FILE_SIZE, "npm": MiB}  # budget: 10 MiB
    assert len(bomb) < MiB
    document = publish_document(NAME, "1.0.0", bomb)
    meter = InflationMeter().install(monkeypatch)
    response = client.put(
        f"/api/v4/projects/{project.pk}/packages/npm/{NAME.replace('/', '%2f')}",
        data=json.dumps(document),
        content_type="application/json",
        **developer,
    )
    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": "Bad request - Package tarball exceeds the limit of 10485760 bytes when decompressed",
        "message": "400 Bad request - Package tarball exceeds the limit of 10485760 bytes when decompressed",
    }
    assert meter.most <= 10 * MiB + archives.READ_SIZE  # stopped at the budget, not at the bomb's size
    assert Package.objects.count() == PackageVersion.objects.count() == PackageFile.objects.count() == 0
    assert Blob.objects.count() == 0
    assert stored_objects(blob_dir) == []
