"""dotnet nuget push of a broken or hostile .nupkg: a 400 in NuGet's error shape, nothing stored."""

import pytest

from accounts.roles import AccessLevel
from registry import archives
from registry.models import Blob, Package, PackageFile, PackageVersion
from tests.bombs import zip_with_corrupt_deflate, zip_with_members
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.nuget.nupkg import multipart, nuspec
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db

NUSPEC = nuspec("Acme.Tools", "1.2.3").encode()


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def developer(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return auth_headers(AccessTokenFactory(user=user).plaintext, "basic:someone")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            zip_with_corrupt_deflate({"Acme.Tools.nuspec": NUSPEC, "lib/a.dll": b"MZ" * 100}, "Acme.Tools.nuspec"),
            "400 Bad request - the package is not a valid zip (.nupkg) file",
        ),
        (
            zip_with_members(60, files={"Acme.Tools.nuspec": NUSPEC}),
            "400 Bad request - the package exceeds the limit of 50 members",
        ),
    ],
    ids=["corrupt-deflate", "too-many-members"],
)
def test_a_corrupt_or_hostile_nupkg_is_400_and_stores_nothing(
    client, project, developer, blob_dir, spool_dir, monkeypatch, data, message
):
    monkeypatch.setattr(archives, "MAX_MEMBERS", 50)
    spooled = set(spool_dir.iterdir())
    body, content_type = multipart(data, "Acme.Tools.1.2.3.nupkg")
    response = client.put(
        f"/api/v4/projects/{project.pk}/packages/nuget/", data=body, content_type=content_type, **developer
    )
    assert response.status_code == 400, response.content
    assert response.json()["message"] == message
    assert set(spool_dir.iterdir()) == spooled
    assert Package.objects.count() == PackageVersion.objects.count() == PackageFile.objects.count() == 0
    assert Blob.objects.count() == 0
    assert stored_objects(blob_dir) == []
