"""curl against a live server: a Maintainer protects a generic package through the REST API;
uploads with a Developer's token, a deploy token and a Developer's job token are refused with
GitLab's body, a Maintainer uploads; a Maintainer below the rule's `owner` delete level cannot
delete it, an Owner can."""

import json

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageFile, PackageVersion
from tests.clients.generic.test_curl import curl
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


def token(project, level):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    return user, AccessTokenFactory(user=user).plaintext


def test_protect_refuse_publish_and_delete_with_curl(live_registry, tmp_path):
    project = ProjectFactory(group=GroupFactory(path="acme"), path="releases")
    developer, developer_token = token(project, AccessLevel.DEVELOPER)
    _, maintainer_token = token(project, AccessLevel.MAINTAINER)
    _, owner_token = token(project, AccessLevel.OWNER)
    rules = live_registry.api(f"projects/{project.pk}/packages/protection/rules")
    body = tmp_path / "rule.json"
    body.write_text(
        json.dumps(
            {
                "package_name_pattern": "tool*",
                "package_type": "generic",
                "minimum_access_level_for_push": "maintainer",
                "minimum_access_level_for_delete": "owner",
            }
        )
    )
    json_post = ["-H", "Content-Type: application/json", "--data-binary", f"@{body}", rules]
    status, output = curl("-H", f"PRIVATE-TOKEN: {developer_token}", *json_post)
    assert status == 403
    status, output = curl("-H", f"PRIVATE-TOKEN: {maintainer_token}", *json_post)
    assert status == 201, output
    assert json.loads(output)["minimum_access_level_for_delete"] == "owner"
    status, output = curl("-H", f"PRIVATE-TOKEN: {maintainer_token}", *json_post)
    assert status == 422, output

    artifact = tmp_path / "tool.tar.gz"
    artifact.write_bytes(b"release bytes\n")
    url = live_registry.api(f"projects/{project.pk}/packages/generic/tool/1.0.0/tool.tar.gz")
    deploy = DeployTokenFactory(project=project)
    job = CiJobFactory(project=project, user=developer)
    for header in (
        f"PRIVATE-TOKEN: {developer_token}",
        f"DEPLOY-TOKEN: {deploy.plaintext}",
        f"JOB-TOKEN: {job.plaintext}",
    ):
        status, output = curl("-H", header, "--upload-file", str(artifact), url)
        assert status == 403, output
        assert json.loads(output) == {"message": "403 Forbidden - Package protected."}
    status, output = curl("--user", f"{deploy.username}:{deploy.plaintext}", "--upload-file", str(artifact), url)
    assert status == 403
    assert not PackageFile.objects.exists()

    status, output = curl("-H", f"PRIVATE-TOKEN: {maintainer_token}", "--upload-file", str(artifact), url)
    assert status == 201, output
    version = PackageVersion.objects.get()

    delete = live_registry.api(f"projects/{project.pk}/packages/{version.pk}")
    status, output = curl("-X", "DELETE", "-H", f"PRIVATE-TOKEN: {maintainer_token}", delete)
    assert status == 403, output
    assert json.loads(output) == {"message": "403 Forbidden - Package protected."}
    assert PackageVersion.objects.get().status == "default"
    status, output = curl("-X", "DELETE", "-H", f"PRIVATE-TOKEN: {owner_token}", delete)
    assert status == 204, output
    assert PackageVersion.objects.get().status == "pending_destruction"
