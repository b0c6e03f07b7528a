"""The real mvn meets a package protection rule: `mvn deploy` is refused (403) with a
Developer's Private-Token, a Deploy-Token and a Developer's Job-Token, leaving nothing stored;
a Maintainer deploys."""

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageFile, ProtectionRule
from tests.clients.maven.test_mvn import deploy, developer, group, maven, project  # noqa: F401
from tests.factories import AccessTokenFactory, CiJobFactory, DeployTokenFactory, MembershipFactory, UserFactory
from tests.helpers import stored_objects

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def test_protected_maven_package(live_registry, maven, project, developer, tmp_path):  # noqa: F811
    ProtectionRule.objects.create(
        project=project, package_type="maven", package_name_pattern="com/example/*", minimum_access_level_for_push=40
    )
    url = live_registry.api(f"projects/{project.pk}/packages/maven")
    refused = [
        ("header", "Private-Token", AccessTokenFactory(user=developer).plaintext),
        ("header", "Deploy-Token", DeployTokenFactory(project=project).plaintext),
        ("header", "Job-Token", CiJobFactory(project=project, user=developer).plaintext),
    ]
    for n, credential in enumerate(refused):
        code, output, _ = deploy(tmp_path, maven, url, credential, "1.0-SNAPSHOT", f"refused-{n}")
        assert code != 0, output
        assert "403" in output, output
    assert not PackageFile.objects.exists()
    assert stored_objects(live_registry.blob_dir) == []

    boss = UserFactory()
    MembershipFactory(user=boss, project=project, access_level=AccessLevel.MAINTAINER)
    credential = ("header", "Private-Token", AccessTokenFactory(user=boss).plaintext)
    code, output, _ = deploy(tmp_path, maven, url, credential, "1.0-SNAPSHOT", "maintainer")
    assert code == 0, output
    assert PackageFile.objects.filter(file_name__endswith=".jar").count() == 1
