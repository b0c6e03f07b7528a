"""The real npm CLI meets a package protection rule: publish and dist-tag add are refused
(`Package protected.`, npm's error shape) for a Developer's token, a deploy token and a
Developer's job token; a Maintainer publishes."""

import pytest

from registry.models import PackageVersion, ProtectionRule
from tests.clients.npm.test_npm_cli import NAME, developer, group, maintainer_token, npm, project  # noqa: F401
from tests.factories import AccessTokenFactory, CiJobFactory, DeployTokenFactory

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def test_protected_npm_package(npm, project, developer, maintainer_token):  # noqa: F811
    ProtectionRule.objects.create(
        project=project, package_type="npm", package_name_pattern="@acme/*", minimum_access_level_for_push=40
    )
    base = f"projects/{project.pk}"
    refused = {
        "personal": AccessTokenFactory(user=developer).plaintext,
        "deploy": DeployTokenFactory(project=project).plaintext,
        "job": CiJobFactory(project=project, user=developer).plaintext,
    }
    for kind, token in refused.items():
        code, output = npm.run(npm.package("1.0.0", base, token), "publish", check=False)
        assert code != 0, kind
        assert "403" in output and "Package protected." in output, (kind, output)
    assert not PackageVersion.objects.exists()

    npm.run(npm.package("1.0.0", base, maintainer_token), "publish")
    assert PackageVersion.objects.get().version == "1.0.0"

    code, output = npm.run(
        npm.consumer(base, refused["personal"], {}), "dist-tag", "add", f"{NAME}@1.0.0", "stable", check=False
    )
    assert code != 0 and "Package protected." in output, output
    boss = npm.consumer(base, maintainer_token, {})
    npm.run(boss, "dist-tag", "add", f"{NAME}@1.0.0", "stable")
    assert npm.stdout(boss, "dist-tag", "ls", NAME).splitlines() == ["latest: 1.0.0", "stable: 1.0.0"]
