"""The list endpoints' visibility querysets agree with the policy's per-object answers."""

import pytest

from accounts.authentication import authenticate_request
from accounts.models import Group, Project
from accounts.principals import ANONYMOUS_PRINCIPAL
from accounts.roles import AccessLevel
from registry import policy
from registry.policy import visible_groups, visible_projects
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def principal_for(token, header="HTTP_PRIVATE_TOKEN"):
    class Request:
        META = {header: token.plaintext}

    return authenticate_request(Request())


@pytest.fixture
def world():
    root = GroupFactory(path="root", visibility="internal")
    secret = GroupFactory(path="secret", parent=root)
    deep = GroupFactory(path="deep", parent=secret)
    public = GroupFactory(path="pub", visibility="public")
    lonely = GroupFactory(path="lonely")
    projects = [
        ProjectFactory(group=deep, path="a"),
        ProjectFactory(group=secret, path="b", package_registry_access_level="public"),
        ProjectFactory(group=root, path="c", visibility="internal"),
        ProjectFactory(group=public, path="d", visibility="public"),
        ProjectFactory(group=lonely, path="e"),
        ProjectFactory(group=None, namespace_owner=UserFactory(), path="mine"),
    ]
    return {"groups": [root, secret, deep, public, lonely], "projects": projects}


def principals(world):
    member_of_deep = UserFactory()
    MembershipFactory(user=member_of_deep, group=world["groups"][2], access_level=AccessLevel.GUEST)
    project_member = UserFactory()
    MembershipFactory(user=project_member, project=world["projects"][4], access_level=AccessLevel.REPORTER)
    expired = UserFactory()
    MembershipFactory(user=expired, group=world["groups"][4], access_level=AccessLevel.OWNER, expires_at="2000-01-01")
    external = UserFactory(is_external=True)
    owner = world["projects"][5].namespace_owner
    return {
        "anonymous": ANONYMOUS_PRINCIPAL,
        "admin": principal_for(AccessTokenFactory(user=AdminFactory())),
        "stranger": principal_for(AccessTokenFactory()),
        "external": principal_for(AccessTokenFactory(user=external)),
        "member_of_deep": principal_for(AccessTokenFactory(user=member_of_deep)),
        "project_member": principal_for(AccessTokenFactory(user=project_member)),
        "expired_member": principal_for(AccessTokenFactory(user=expired)),
        "personal_owner": principal_for(AccessTokenFactory(user=owner)),
        "group_deploy": principal_for(DeployTokenFactory(group=world["groups"][1]), "HTTP_DEPLOY_TOKEN"),
        "project_deploy": principal_for(DeployTokenFactory(project=world["projects"][4]), "HTTP_DEPLOY_TOKEN"),
    }


def test_project_and_group_listings_match_the_policy(world):
    for name, principal in principals(world).items():
        listed = set(visible_projects(principal).values_list("pk", flat=True))
        expected = {p.pk for p in Project.objects.all() if policy.ProjectAccess(principal, p).visible()}
        assert listed == expected, name
        listed_groups = set(visible_groups(principal).values_list("pk", flat=True))
        expected_groups = {g.pk for g in Group.objects.all() if policy.group_visible(principal, g)}
        assert listed_groups == expected_groups, name
