"""Group targets: who sees a group, who may pull through it, and which projects it aggregates."""

import pytest

from accounts import roles
from accounts.authentication import authenticate_request
from accounts.principals import ANONYMOUS_PRINCIPAL
from accounts.roles import AccessLevel
from registry import policy
from registry.errors import RegistryError
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def principal(**meta):
    class Request:
        META = meta

    return authenticate_request(Request())


def status(principal_, group, action=roles.READ_PACKAGE):
    try:
        policy.authorize_group(principal_, group, action)
    except RegistryError as exc:
        return exc.status
    return 200


@pytest.fixture
def tree():
    """acme (private) -> {public-lib (public), secret (private), internal-tool (internal)},
    acme/team (private subgroup) -> team-app (private); other (private) -> elsewhere."""
    acme = GroupFactory(path="acme", visibility="private")
    team = GroupFactory(path="team", parent=acme, visibility="private")
    return {
        "acme": acme,
        "team": team,
        "public-lib": ProjectFactory(group=acme, path="public-lib", visibility="public"),
        "secret": ProjectFactory(group=acme, path="secret", visibility="private"),
        "internal-tool": ProjectFactory(group=acme, path="internal-tool", visibility="internal"),
        "team-app": ProjectFactory(group=team, path="team-app", visibility="private"),
        "elsewhere": ProjectFactory(group=GroupFactory(path="other"), path="elsewhere"),
    }


def pullable(principal_, group):
    return sorted(policy.pullable_projects(principal_, group).values_list("path", flat=True))


def test_anonymous_pulls_only_public_projects_and_gets_401_on_a_private_group(tree):
    assert status(ANONYMOUS_PRINCIPAL, tree["acme"]) == 200  # a public project is inside
    assert pullable(ANONYMOUS_PRINCIPAL, tree["acme"]) == ["public-lib"]
    assert status(ANONYMOUS_PRINCIPAL, tree["team"]) == 401


def test_a_signed_in_non_member_sees_public_and_internal_projects_only(tree):
    stranger = principal(HTTP_PRIVATE_TOKEN=AccessTokenFactory().plaintext)
    assert pullable(stranger, tree["acme"]) == ["internal-tool", "public-lib"]
    assert status(stranger, tree["team"]) == 404


def test_group_membership_reaches_every_project_and_subgroup_below(tree):
    user = UserFactory()
    MembershipFactory(user=user, group=tree["acme"], access_level=AccessLevel.REPORTER)
    member = principal(HTTP_PRIVATE_TOKEN=AccessTokenFactory(user=user).plaintext)
    assert pullable(member, tree["acme"]) == ["internal-tool", "public-lib", "secret", "team-app"]
    assert pullable(member, tree["team"]) == ["team-app"]
    assert status(member, tree["team"]) == 200


def test_a_guest_of_the_group_cannot_pull_its_private_projects(tree):
    user = UserFactory()
    MembershipFactory(user=user, group=tree["acme"], access_level=AccessLevel.GUEST)
    guest = principal(HTTP_PRIVATE_TOKEN=AccessTokenFactory(user=user).plaintext)
    assert pullable(guest, tree["acme"]) == ["internal-tool", "public-lib"]
    assert status(guest, tree["team"]) == 200  # sees the subgroup, pulls nothing private


def test_a_project_member_sees_the_private_parent_group_but_only_that_project(tree):
    user = UserFactory()
    MembershipFactory(user=user, project=tree["team-app"], access_level=AccessLevel.DEVELOPER)
    member = principal(HTTP_PRIVATE_TOKEN=AccessTokenFactory(user=user).plaintext)
    assert status(member, tree["team"]) == 200
    assert pullable(member, tree["team"]) == ["team-app"]


def test_group_deploy_token_reaches_projects_under_its_group_only(tree):
    token = DeployTokenFactory(group=tree["team"], scopes=["read_package_registry"])
    deploy = principal(HTTP_DEPLOY_TOKEN=token.plaintext)
    assert status(deploy, tree["team"]) == 200
    assert pullable(deploy, tree["team"]) == ["team-app"]
    assert pullable(deploy, tree["acme"]) == ["public-lib", "team-app"]
    assert status(deploy, tree["elsewhere"].group) == 404


def test_deploy_token_without_package_scope_pulls_nothing(tree):
    token = DeployTokenFactory(group=tree["acme"], scopes=["read_repository"])
    deploy = principal(HTTP_DEPLOY_TOKEN=token.plaintext)
    assert pullable(deploy, tree["acme"]) == []
    assert status(deploy, tree["acme"]) == 403


def test_job_token_through_a_group_respects_each_projects_allowlist(tree):
    user = UserFactory()
    MembershipFactory(user=user, group=tree["acme"], access_level=AccessLevel.DEVELOPER)
    job = CiJobFactory(project=tree["elsewhere"], user=user)
    job_principal = principal(HTTP_JOB_TOKEN=job.plaintext)
    assert pullable(job_principal, tree["acme"]) == ["internal-tool", "public-lib"]
    tree["secret"].ci_job_token_scope_enabled = False
    tree["secret"].save()
    assert pullable(job_principal, tree["acme"]) == ["internal-tool", "public-lib", "secret"]


def test_nobody_manages_group_settings_below_owner(tree):
    user = UserFactory()
    MembershipFactory(user=user, group=tree["acme"], access_level=AccessLevel.MAINTAINER)
    maintainer = principal(HTTP_PRIVATE_TOKEN=AccessTokenFactory(user=user).plaintext)
    assert status(maintainer, tree["acme"], roles.ADMIN_PACKAGE_SETTINGS) == 403
    assert status(maintainer, tree["acme"], roles.READ_GROUP_TOKENS) == 200
    owner_user = UserFactory()
    MembershipFactory(user=owner_user, group=tree["acme"], access_level=AccessLevel.OWNER)
    owner = principal(HTTP_PRIVATE_TOKEN=AccessTokenFactory(user=owner_user).plaintext)
    assert status(owner, tree["acme"], roles.ADMIN_PACKAGE_SETTINGS) == 200


def test_anonymous_pulls_everything_only_when_every_project_under_the_group_allows_it():
    group = GroupFactory(visibility="public")
    assert policy.anonymous_pulls_everything(group)  # nothing to hide yet
    ProjectFactory(group=group, visibility="public")
    sub = GroupFactory(parent=group, visibility="public")
    hidden = ProjectFactory(group=sub, visibility="private")
    assert not policy.anonymous_pulls_everything(group)
    hidden.package_registry_access_level = "disabled"  # nothing to pull there at all
    hidden.save()
    assert policy.anonymous_pulls_everything(group)
    ProjectFactory(group=GroupFactory(visibility="private"), visibility="private")  # elsewhere
    assert policy.anonymous_pulls_everything(group)
