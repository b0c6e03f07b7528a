"""Package protection rules API (spec §4.6): GET/POST /projects/:id/packages/protection/rules,
PATCH/DELETE .../:package_protection_rule_id, Maintainer+, GitLab's fields and spellings."""

import json

import pytest

from accounts.roles import AccessLevel
from registry import formats
from registry.models import ProtectionRule
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


def headers_for(project, level):
    user = UserFactory()
    if level is not None:
        MembershipFactory(user=user, project=project, access_level=level)
    return auth_headers(AccessTokenFactory(user=user).plaintext)


@pytest.fixture
def maintainer(project):
    return headers_for(project, AccessLevel.MAINTAINER)


def rules_url(project, rule_id=None):
    url = f"/api/v4/projects/{project.pk}/packages/protection/rules"
    return f"{url}/{rule_id}" if rule_id is not None else url


def post(client, project, headers, **data):
    return client.post(rules_url(project), data=json.dumps(data), content_type="application/json", **headers)


def test_create_list_update_delete(client, project, maintainer):
    created = post(
        client,
        project,
        maintainer,
        package_name_pattern="@acme/*",
        package_type="npm",
        minimum_access_level_for_push="maintainer",
    )
    assert created.status_code == 201
    rule = created.json()
    assert rule == {
        "id": rule["id"],
        "project_id": project.pk,
        "package_name_pattern": "@acme/*",
        "package_type": "npm",
        "minimum_access_level_for_push": "maintainer",
        "minimum_access_level_for_delete": None,
    }
    listed = client.get(rules_url(project), **maintainer)
    assert listed.status_code == 200
    assert listed.json() == [rule]
    assert listed["X-Total"] == "1"

    patched = client.patch(
        rules_url(project, rule["id"]),
        data=json.dumps({"minimum_access_level_for_delete": "owner", "minimum_access_level_for_push": None}),
        content_type="application/json",
        **maintainer,
    )
    assert patched.status_code == 200
    assert patched.json()["minimum_access_level_for_push"] is None
    assert patched.json()["minimum_access_level_for_delete"] == "owner"
    row = ProtectionRule.objects.get()
    assert (row.minimum_access_level_for_push, row.minimum_access_level_for_delete) == (None, AccessLevel.OWNER)

    assert client.delete(rules_url(project, rule["id"]), **maintainer).status_code == 204
    assert not ProtectionRule.objects.exists()
    assert client.delete(rules_url(project, rule["id"]), **maintainer).status_code == 404


def test_every_registered_format_is_a_package_type(client, project, maintainer):
    for fmt in formats.all_formats():
        response = post(
            client,
            project,
            maintainer,
            package_name_pattern="x*",
            package_type=fmt.name,
            minimum_access_level_for_push="owner",
        )
        assert response.status_code == 201, fmt.name
    assert ProtectionRule.objects.count() == len(formats.all_formats())


def test_a_taken_pattern_is_422_per_type(client, project, maintainer):
    fields = {"package_name_pattern": "tool*", "minimum_access_level_for_push": "owner"}
    assert post(client, project, maintainer, package_type="generic", **fields).status_code == 201
    taken = post(client, project, maintainer, package_type="generic", **fields)
    assert taken.status_code == 422
    assert taken.json() == {"message": {"error": "Package name pattern has already been taken"}}
    assert post(client, project, maintainer, package_type="pypi", **fields).status_code == 201
    other = ProjectFactory(group=project.group)
    MembershipFactory(user=AccessTokenFactory._meta.model.objects.last().user, project=other, access_level=40)
    assert post(client, other, maintainer, package_type="generic", **fields).status_code == 201
    # renaming a rule onto a taken pattern is refused the same way
    second = post(
        client,
        project,
        maintainer,
        package_type="generic",
        package_name_pattern="lib",
        minimum_access_level_for_push="owner",
    )
    renamed = client.patch(
        rules_url(project, second.json()["id"]),
        data=json.dumps({"package_name_pattern": "tool*"}),
        content_type="application/json",
        **maintainer,
    )
    assert renamed.status_code == 422
    assert ProtectionRule.objects.get(pk=second.json()["id"]).package_name_pattern == "lib"


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({"package_type": "npm", "minimum_access_level_for_push": "owner"}, 400, "package_name_pattern is missing"),
        ({"package_name_pattern": "a", "minimum_access_level_for_push": "owner"}, 400, "package_type is missing"),
        (
            {"package_name_pattern": "a", "package_type": "helm", "minimum_access_level_for_push": "owner"},
            400,
            "package_type does not have a valid value",
        ),
        (
            {"package_name_pattern": "a", "package_type": "npm", "minimum_access_level_for_push": "developer"},
            400,
            "minimum_access_level_for_push does not have a valid value",
        ),
        (
            {"package_name_pattern": "a", "package_type": "npm", "minimum_access_level_for_delete": "maintainer"},
            400,
            "minimum_access_level_for_delete does not have a valid value",
        ),
        (
            {"package_name_pattern": "a\nb", "package_type": "npm", "minimum_access_level_for_push": "owner"},
            400,
            "package_name_pattern is invalid",
        ),
        (
            {"package_name_pattern": "a" * 256, "package_type": "npm", "minimum_access_level_for_push": "owner"},
            400,
            "package_name_pattern is too long (maximum is 255 characters)",
        ),
    ],
)
def test_bad_values_are_400(client, project, maintainer, fields, status, error):
    response = post(client, project, maintainer, **fields)
    assert response.status_code == status
    assert response.json() == {"error": error}
    assert not ProtectionRule.objects.exists()


def test_a_rule_without_any_level_is_422(client, project, maintainer):
    response = post(client, project, maintainer, package_name_pattern="a", package_type="npm")
    assert response.status_code == 422
    assert "minimum access role" in response.json()["message"]["error"]


def test_only_maintainers_manage_rules(client, project):
    rule = ProtectionRule.objects.create(
        project=project, package_type="npm", package_name_pattern="a", minimum_access_level_for_push=40
    )
    developer = headers_for(project, AccessLevel.DEVELOPER)
    stranger = headers_for(project, None)
    body = {"package_name_pattern": "b", "package_type": "npm", "minimum_access_level_for_push": "owner"}
    assert client.get(rules_url(project)).status_code == 401
    assert client.get(rules_url(project), **developer).status_code == 403
    assert post(client, project, developer, **body).status_code == 403
    assert client.delete(rules_url(project, rule.pk), **developer).status_code == 403
    assert client.get(rules_url(project), **stranger).status_code == 404
    deploy = auth_headers(DeployTokenFactory(project=project).plaintext, "deploy")
    assert client.get(rules_url(project), **deploy).status_code == 403
    job = CiJobFactory(project=project, user=UserFactory())
    MembershipFactory(user=job.user, project=project, access_level=AccessLevel.OWNER)
    assert client.get(rules_url(project), **auth_headers(job.plaintext, "job")).status_code == 403
    assert ProtectionRule.objects.count() == 1


def test_rules_of_another_project_are_404(client, project, maintainer):
    other = ProjectFactory(group=project.group)
    rule = ProtectionRule.objects.create(
        project=other, package_type="npm", package_name_pattern="a", minimum_access_level_for_push=40
    )
    assert client.delete(rules_url(project, rule.pk), **maintainer).status_code == 404
    assert ProtectionRule.objects.filter(pk=rule.pk).exists()
