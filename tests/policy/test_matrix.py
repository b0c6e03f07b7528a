"""The permission matrix: principal kind x visibility x role x action, expected statuses as data.

Pull and publish go through the generic endpoints over HTTP (GET / PUT of a file); delete,
delete-file and settings are asked of the policy directly (their endpoints come with the
package management API) and the raised error is read as the status the endpoint would send.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import roles
from accounts.authentication import authenticate_request
from accounts.roles import AccessLevel
from registry import formats, policy, services
from registry.errors import RegistryError
from registry.formats import FileDraft, PackageDraft
from registry.spool import spool_bytes
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    JobTokenScopeLinkFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    bot_token,
    finish,
)
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

ROLE = {
    None: None,
    "guest": AccessLevel.GUEST,
    "reporter": AccessLevel.REPORTER,
    "developer": AccessLevel.DEVELOPER,
    "maintainer": AccessLevel.MAINTAINER,
}

# (principal kind, visibility, role) -> (pull, publish, delete package, delete file, settings)
# 200/201/204 mean allowed; the policy-level columns use 204 for "allowed".
MATRIX = {
    # anonymous: only public pulls; everything else asks for credentials.
    ("anonymous", "public", None): (200, 401, 401, 401, 401),
    ("anonymous", "internal", None): (401, 401, 401, 401, 401),
    ("anonymous", "private", None): (401, 401, 401, 401, 401),
    # personal access token with the api scope, by the user's role in the project.
    ("pat_api", "public", None): (200, 403, 403, 403, 403),
    ("pat_api", "public", "guest"): (200, 403, 403, 403, 403),
    ("pat_api", "public", "reporter"): (200, 403, 403, 403, 403),
    ("pat_api", "public", "developer"): (200, 201, 403, 403, 403),
    ("pat_api", "public", "maintainer"): (200, 201, 204, 204, 204),
    ("pat_api", "internal", None): (200, 403, 403, 403, 403),
    ("pat_api", "internal", "guest"): (200, 403, 403, 403, 403),
    ("pat_api", "internal", "reporter"): (200, 403, 403, 403, 403),
    ("pat_api", "internal", "developer"): (200, 201, 403, 403, 403),
    ("pat_api", "internal", "maintainer"): (200, 201, 204, 204, 204),
    ("pat_api", "private", None): (404, 404, 404, 404, 404),
    ("pat_api", "private", "guest"): (403, 403, 403, 403, 403),
    ("pat_api", "private", "reporter"): (200, 403, 403, 403, 403),
    ("pat_api", "private", "developer"): (200, 201, 403, 403, 403),
    ("pat_api", "private", "maintainer"): (200, 201, 204, 204, 204),
    # read_api: pulls only, whatever the role.
    ("pat_read_api", "public", "maintainer"): (200, 403, 403, 403, 403),
    ("pat_read_api", "internal", "maintainer"): (200, 403, 403, 403, 403),
    ("pat_read_api", "private", None): (404, 404, 404, 404, 404),
    ("pat_read_api", "private", "reporter"): (200, 403, 403, 403, 403),
    ("pat_read_api", "private", "maintainer"): (200, 403, 403, 403, 403),
    # project access token: a bot member of the project with the token's role.
    ("project_bot", "private", "guest"): (403, 403, 403, 403, 403),
    ("project_bot", "private", "reporter"): (200, 403, 403, 403, 403),
    ("project_bot", "private", "developer"): (200, 201, 403, 403, 403),
    ("project_bot", "private", "maintainer"): (200, 201, 204, 204, 204),
    ("project_bot", "public", "reporter"): (200, 403, 403, 403, 403),
    # group access token: a bot member of the parent group, inherited by the project.
    ("group_bot", "private", "guest"): (403, 403, 403, 403, 403),
    ("group_bot", "private", "reporter"): (200, 403, 403, 403, 403),
    ("group_bot", "private", "developer"): (200, 201, 403, 403, 403),
    ("group_bot", "private", "maintainer"): (200, 201, 204, 204, 204),
    ("group_bot", "internal", "developer"): (200, 201, 403, 403, 403),
    # deploy tokens: pull with either package scope, publish with write; never delete or settings.
    ("deploy_read", "public", None): (200, 403, 403, 403, 403),
    ("deploy_read", "internal", None): (200, 403, 403, 403, 403),
    ("deploy_read", "private", None): (200, 403, 403, 403, 403),
    ("deploy_write", "public", None): (200, 201, 403, 403, 403),
    ("deploy_write", "internal", None): (200, 201, 403, 403, 403),
    ("deploy_write", "private", None): (200, 201, 403, 403, 403),
    ("group_deploy_write", "private", None): (200, 201, 403, 403, 403),
    ("other_project_deploy_write", "public", None): (200, 403, 403, 403, 403),
    ("other_project_deploy_write", "internal", None): (404, 404, 404, 404, 404),
    ("other_project_deploy_write", "private", None): (404, 404, 404, 404, 404),
    # job token of a job in the same project: the user's role, never settings.
    ("job", "private", None): (404, 404, 404, 404, 404),
    ("job", "private", "reporter"): (200, 403, 403, 403, 403),
    ("job", "private", "developer"): (200, 201, 403, 403, 403),
    ("job", "private", "maintainer"): (200, 201, 204, 204, 403),
    ("job", "public", "developer"): (200, 201, 403, 403, 403),
    ("finished_job", "private", "maintainer"): (401, 401, 401, 401, 401),
    ("finished_job", "public", "maintainer"): (401, 401, 401, 401, 401),
    # job of another project, allowlisted by the target project.
    ("job_allowlisted", "private", "developer"): (200, 201, 403, 403, 403),
    ("job_allowlisted_by_group", "private", "developer"): (200, 201, 403, 403, 403),
    ("job_allowlisted", "private", "maintainer"): (200, 201, 204, 204, 403),
    # job of another project, not allowlisted: public/internal pulls only; private is hidden.
    ("job_not_allowlisted", "public", "developer"): (200, 403, 403, 403, 403),
    ("job_not_allowlisted", "internal", "developer"): (200, 403, 403, 403, 403),
    ("job_not_allowlisted", "private", "maintainer"): (404, 404, 404, 404, 404),
    # the allowlist switched off on the target: the user's role alone decides.
    ("job_scope_disabled", "private", "developer"): (200, 201, 403, 403, 403),
    # dead credentials: always 401, whatever they could once do.
    ("revoked_pat", "public", "maintainer"): (401, 401, 401, 401, 401),
    ("revoked_pat", "private", "maintainer"): (401, 401, 401, 401, 401),
    ("expired_pat", "private", "maintainer"): (401, 401, 401, 401, 401),
    ("expired_deploy", "private", None): (401, 401, 401, 401, 401),
    ("unknown_token", "public", None): (401, 401, 401, 401, 401),
    # instance admin, not a member.
    ("admin_pat", "private", None): (200, 201, 204, 204, 204),
    # a job started by an instance admin acts with the admin's memberships only (seed 000).
    ("admin_job", "private", None): (404, 404, 404, 404, 404),
    ("admin_job", "private", "developer"): (200, 201, 403, 403, 403),
    ("admin_job_allowlisted", "private", None): (404, 404, 404, 404, 404),
    ("admin_job_allowlisted", "private", "reporter"): (200, 403, 403, 403, 403),
    ("admin_job_allowlisted", "internal", None): (200, 403, 403, 403, 403),
    # a job started by an external user: internal projects only through a membership.
    ("external_job_allowlisted", "internal", None): (404, 404, 404, 404, 404),
    ("external_job_allowlisted", "internal", "reporter"): (200, 403, 403, 403, 403),
}

POLICY_ACTIONS = (roles.DESTROY_PACKAGE, roles.DESTROY_PACKAGE_FILE, roles.ADMIN_PACKAGE_SETTINGS)


def _member(user, project, role):
    if ROLE[role] is not None:
        MembershipFactory(user=user, project=project, access_level=ROLE[role])


def credential(kind, project, role):
    """Headers for one principal kind, set up with `role` on `project`."""
    other = ProjectFactory(group=GroupFactory(visibility="private"))
    if kind == "anonymous":
        return {}
    if kind in ("pat_api", "pat_read_api", "revoked_pat", "expired_pat"):
        user = UserFactory()
        _member(user, project, role)
        token = AccessTokenFactory(user=user, scopes=["read_api"] if kind == "pat_read_api" else ["api"])
        if kind == "revoked_pat":
            token.revoke()
        if kind == "expired_pat":
            token.expires_at = timezone.now() - timedelta(days=1)
            token.save()
        return auth_headers(token.plaintext, "private")
    if kind == "admin_pat":
        return auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext, "bearer")
    if kind == "project_bot":
        return auth_headers(bot_token(project, ROLE[role]).plaintext, "basic:any-name")
    if kind == "group_bot":
        return auth_headers(bot_token(project.group, ROLE[role]).plaintext, "private")
    if kind in ("deploy_read", "deploy_write", "expired_deploy"):
        scopes = ["read_package_registry"] if kind == "deploy_read" else ["write_package_registry"]
        token = DeployTokenFactory(project=project, scopes=scopes)
        if kind == "expired_deploy":
            token.expires_at = timezone.now() - timedelta(minutes=1)
            token.save()
        return auth_headers(token.plaintext, "deploy")
    if kind == "group_deploy_write":
        token = DeployTokenFactory(group=project.group, scopes=["write_package_registry"])
        return auth_headers(token.plaintext, f"basic:{token.username}")
    if kind == "other_project_deploy_write":
        token = DeployTokenFactory(project=other, scopes=["write_package_registry"])
        return auth_headers(token.plaintext, "deploy")
    if kind == "unknown_token":
        return auth_headers("glpat-this-token-does-not-exist", "private")
    if kind.startswith("admin_"):
        user = AdminFactory()
    else:
        user = UserFactory(is_external=kind.startswith("external_"))
    _member(user, project, role)
    kind = kind.removeprefix("admin_").removeprefix("external_")
    if kind in ("job", "finished_job"):
        job = CiJobFactory(project=project, user=user)
        if kind == "finished_job":
            finish(job)
        return auth_headers(job.plaintext, "job")
    job = CiJobFactory(project=other, user=user)
    if kind == "job_allowlisted":
        JobTokenScopeLinkFactory(source_project=project, target_project=other)
    if kind == "job_allowlisted_by_group":
        JobTokenScopeLinkFactory(source_project=project, target_group=other.group)
    if kind == "job_scope_disabled":
        project.ci_job_token_scope_enabled = False
        project.save()
    return auth_headers(job.plaintext, "basic:gitlab-ci-token")


def _published_project(visibility):
    project = ProjectFactory(visibility=visibility, group=GroupFactory(visibility=visibility))
    admin = authenticate_principal(AccessTokenFactory(user=AdminFactory()).plaintext)
    with spool_bytes(b"existing bytes") as spool:
        draft = PackageDraft("pkg", "1.0.0", files=[FileDraft("file.bin", spool)])
        services.publish(project, admin, formats.get("generic"), draft)
    return project


def authenticate_principal(token):
    class _Request:
        META = {"HTTP_PRIVATE_TOKEN": token}

    return authenticate_request(_Request())


def _policy_status(headers, project, action):
    class _Request:
        META = headers

    try:
        principal = authenticate_request(_Request())
        policy.authorize(principal, project, action)
    except RegistryError as exc:
        return exc.status
    except Exception as exc:  # DRF AuthenticationFailed
        return getattr(exc, "status_code", 500)
    return 204


@pytest.mark.parametrize(("kind", "visibility", "role"), list(MATRIX), ids=["-".join(map(str, key)) for key in MATRIX])
def test_permission_matrix(client, kind, visibility, role):
    expected = MATRIX[(kind, visibility, role)]
    project = _published_project(visibility)
    headers = credential(kind, project, role)
    base = f"/api/v4/projects/{project.pk}/packages/generic/pkg/1.0.0"

    pull = client.get(f"{base}/file.bin", **headers)
    publish = client.put(f"{base}/new.bin", data=b"new bytes", content_type="application/octet-stream", **headers)
    actual = (
        pull.status_code,
        publish.status_code,
        *(_policy_status(headers, project, action) for action in POLICY_ACTIONS),
    )
    assert actual == expected
    if pull.status_code == 200:
        assert b"".join(pull.streaming_content) == b"existing bytes"
    for response in (pull, publish):
        if response.status_code == 401:
            assert response["WWW-Authenticate"] == 'Basic realm="Packhouse Package Registry"'


@pytest.mark.parametrize(
    ("visibility", "expected"),
    [("private", (200, 401)), ("internal", (200, 401)), ("public", (200, 401))],
)
def test_anyone_may_pull_opens_pulls_not_publishing(client, visibility, expected):
    project = _published_project(visibility)
    project.package_registry_access_level = "public"
    project.save()
    base = f"/api/v4/projects/{project.pk}/packages/generic/pkg/1.0.0"
    pull = client.get(f"{base}/file.bin")
    publish = client.put(f"{base}/new.bin", data=b"x", content_type="application/octet-stream")
    assert (pull.status_code, publish.status_code) == expected


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_a_disabled_registry_does_not_exist_for_anyone_who_sees_the_project(client, visibility):
    project = _published_project(visibility)
    project.package_registry_access_level = "disabled"
    project.save()
    owner = UserFactory()
    MembershipFactory(user=owner, project=project, access_level=AccessLevel.OWNER)
    headers = auth_headers(AccessTokenFactory(user=owner).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/pkg/1.0.0/file.bin"
    assert client.get(url, **headers).status_code == 404
    assert client.put(url, data=b"x", content_type="application/octet-stream", **headers).status_code == 404
    # Whoever does not see the project gets what an unknown project answers.
    assert client.get(url).status_code == (404 if visibility == "public" else 401)
    stranger = auth_headers(AccessTokenFactory().plaintext)
    assert client.get(url, **stranger).status_code == 404


@pytest.mark.parametrize("ref", ["%C2%B2", "%E2%91%A0", "%D9%A1", "1%D9%A1", "99999999999999999999999"])
def test_ids_are_ascii_digits_only(client, ref):
    """`²`, `①` and Arabic-Indic digits are no project id (`١` used to resolve to project 1)."""
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext)
    _published_project("public")
    assert client.get(f"/api/v4/projects/{ref}/packages/generic/pkg/1.0.0/file.bin", **admin).status_code == 404
    assert client.get(f"/api/v4/projects/{ref}", **admin).status_code == 404
    assert client.get(f"/api/v4/groups/{ref}", **admin).status_code == 404


def test_external_user_needs_membership_on_internal_projects(client):
    project = _published_project("internal")
    external = UserFactory(is_external=True)
    headers = auth_headers(AccessTokenFactory(user=external).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/pkg/1.0.0/file.bin"
    assert client.get(url, **headers).status_code == 404
    MembershipFactory(user=external, project=project, access_level=AccessLevel.REPORTER)
    assert client.get(url, **headers).status_code == 200


def test_membership_is_inherited_from_every_ancestor_and_highest_wins(client):
    root = GroupFactory()
    middle = GroupFactory(parent=root)
    leaf = GroupFactory(parent=middle)
    project = ProjectFactory(group=leaf)
    user = UserFactory()
    MembershipFactory(user=user, group=root, access_level=AccessLevel.REPORTER)
    MembershipFactory(user=user, group=middle, access_level=AccessLevel.DEVELOPER)
    MembershipFactory(user=user, project=project, access_level=AccessLevel.GUEST)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/pkg/1.0.0/f.bin"
    assert client.put(url, data=b"x", content_type="application/octet-stream", **headers).status_code == 201


def test_unknown_project_is_401_for_anonymous_and_404_for_a_signed_in_user(client):
    url = "/api/v4/projects/999999/packages/generic/pkg/1.0.0/file.bin"
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Basic ")
    headers = auth_headers(AccessTokenFactory().plaintext)
    assert client.get(url, **headers).status_code == 404
    assert client.get(url, **headers).json() == {"message": "404 Project Not Found"}


def test_project_is_found_by_url_encoded_full_path(client):
    project = _published_project("public")
    path = project.full_path.replace("/", "%2F")
    response = client.get(f"/api/v4/projects/{path}/packages/generic/pkg/1.0.0/file.bin")
    assert response.status_code == 200


def test_group_pullable_projects_agree_with_the_single_project_rule():
    """Both spellings of the pull rule give the same answer for every matrix principal."""
    for kind, visibility, role in MATRIX:
        project = _published_project(visibility)
        headers = credential(kind, project, role)

        class _Request:
            META = headers

        try:
            principal = authenticate_request(_Request())
        except Exception:
            continue
        single = policy.can(principal, project, roles.READ_PACKAGE)
        aggregated = policy.pullable_projects(principal, project.group).filter(pk=project.pk).exists()
        instance_wide = policy.pullable_projects(principal).filter(pk=project.pk).exists()
        assert single == aggregated == instance_wide, (kind, visibility, role)
