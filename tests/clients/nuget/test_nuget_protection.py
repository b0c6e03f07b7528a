"""The real NuGet.exe meets a package protection rule: push is refused (403) with a
Developer's token as the API key, a deploy token as the API key and a Developer's job token
as source credentials; a Maintainer pushes."""

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageFile, ProtectionRule
from tests.clients.nuget.test_nuget_exe import Client, nuget_exe, project_source, world  # noqa: F401
from tests.factories import AccessTokenFactory, CiJobFactory, DeployTokenFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def test_protected_nuget_package(nuget_exe, live_registry, world, tmp_path):  # noqa: F811
    _, project, user = world
    ProtectionRule.objects.create(
        project=project, package_type="nuget", package_name_pattern="Acme.*", minimum_access_level_for_push=40
    )
    source = project_source(live_registry, project)
    client = Client(nuget_exe, tmp_path)
    client.add_source("packhouse", source, user.username, AccessTokenFactory(user=user).plaintext)
    package = client.pack("Acme.Guarded", "1.0.0")

    for api_key in (AccessTokenFactory(user=user).plaintext, DeployTokenFactory(project=project).plaintext):
        code, output = client.push(package, "packhouse", "-ApiKey", api_key, check=False)
        assert code != 0 and "403" in output, output
    ci = Client(nuget_exe, tmp_path / "ci")
    ci.add_source("packhouse", source, "gitlab-ci-token", CiJobFactory(project=project, user=user).plaintext)
    code, output = ci.push(package, "packhouse", check=False)
    assert code != 0 and "403" in output, output
    assert not PackageFile.objects.exists()

    boss = UserFactory()
    MembershipFactory(user=boss, project=project, access_level=AccessLevel.MAINTAINER)
    client.push(package, "packhouse", "-ApiKey", AccessTokenFactory(user=boss).plaintext)
    assert PackageFile.objects.get().file_name == "acme.guarded.1.0.0.nupkg"
