"""The real twine meets a package protection rule: uploads are refused (403, `Package
protected.` as the reason twine prints) with a Developer's token, a deploy token and a
Developer's job token; a Maintainer uploads."""

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageFile, ProtectionRule
from tests.clients.pypi.test_pip_twine import dists, twine  # noqa: F401
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def test_protected_pypi_package(live_registry, dists):  # noqa: F811
    project = ProjectFactory(group=GroupFactory(path="acme"), path="py")
    developer, maintainer = UserFactory(), UserFactory()
    MembershipFactory(user=developer, project=project, access_level=AccessLevel.DEVELOPER)
    MembershipFactory(user=maintainer, project=project, access_level=AccessLevel.MAINTAINER)
    # spelled as people write it; the format's normal name is packhouse-tiny-demo
    ProtectionRule.objects.create(
        project=project, package_type="pypi", package_name_pattern="Packhouse_Tiny*", minimum_access_level_for_push=40
    )
    deploy = DeployTokenFactory(project=project)
    refused = [
        ("__token__", AccessTokenFactory(user=developer).plaintext),
        (deploy.username, deploy.plaintext),
        ("gitlab-ci-token", CiJobFactory(project=project, user=developer).plaintext),
    ]
    for username, password in refused:
        code, output = twine(live_registry, project, username, password, dists)
        assert code != 0, output
        assert "403" in output and "Package protected." in output, output
    assert not PackageFile.objects.exists()

    code, output = twine(live_registry, project, "__token__", AccessTokenFactory(user=maintainer).plaintext, dists)
    assert code == 0, output
    assert PackageFile.objects.count() == 2
