"""python-gitlab (the GitLab API client most automation uses) against a live server, over every
manager scripts use: users and their tokens, groups and subgroups, projects, members and
members_all, deploy tokens (project, group, instance), access tokens, the job-token scope and its
allowlists, packages and package files, generic upload/download, and pagination with get_all and
iterator. Each call answers what GitLab's API documentation says, refusals included."""

import datetime
import warnings

import gitlab
import pytest
from gitlab import exceptions as gl_errors

from accounts.models import Membership, Project, User
from accounts.roles import AccessLevel
from registry.models import PackageVersion, Status
from tests.factories import AccessTokenFactory, AdminFactory, GroupFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

NEXT_YEAR = (datetime.date.today() + datetime.timedelta(days=300)).isoformat()


def client(live_registry, token=None):
    gl = gitlab.Gitlab(live_registry.url, private_token=token, retry_transient_errors=False)
    if token:
        gl.auth()
    return gl


@pytest.fixture
def admin(live_registry):
    user = AdminFactory(username="root")
    return client(live_registry, AccessTokenFactory(user=user).plaintext)


def person(live_registry, username):
    user = UserFactory(username=username)
    return user, client(live_registry, AccessTokenFactory(user=user).plaintext)


def refused(error_class, status, call, *args, **kwargs):
    with pytest.raises(error_class) as caught:
        call(*args, **kwargs)
    assert caught.value.response_code == status, caught.value
    return caught.value


# --- the server, users and their tokens ------------------------------------------------------


def test_version_and_unknown_paths(live_registry, admin):
    version, revision = admin.version()
    assert version not in ("", "unknown") and revision not in ("", "unknown")
    error = refused(gl_errors.GitlabHttpError, 404, admin.http_get, "/runners/all")
    assert error.error_message == "404 Not Found"
    error = refused(gl_errors.GitlabHttpError, 404, admin.http_post, "/nonexistent", post_data={"a": 1})
    assert error.error_message == "404 Not Found"
    refused(gl_errors.GitlabHttpError, 405, admin.http_post, "/version")
    bad = gitlab.Gitlab(live_registry.url, private_token="glpat-not-a-token")
    refused(gl_errors.GitlabAuthenticationError, 401, bad.auth)


def test_users_create_update_block_and_tokens(live_registry, admin):
    created = admin.users.create(
        {"username": "alice", "email": "alice@example.com", "name": "Alice", "password": "s3cret-pass"}
    )
    assert (created.username, created.state, created.is_admin) == ("alice", "active", False)
    assert admin.users.get(created.id).email == "alice@example.com"
    assert [u.id for u in admin.users.list(username="alice")] == [created.id]

    created.name = "Alice Liddell"
    created.external = True
    created.save()
    again = admin.users.get(created.id)
    assert (again.name, again.external) == ("Alice Liddell", True)

    token = created.personal_access_tokens.create({"name": "automation", "scopes": ["api"], "expires_at": NEXT_YEAR})
    assert token.token.startswith("glpat-") and token.expires_at == NEXT_YEAR
    alice = client(live_registry, token.token)
    assert alice.user.username == "alice"

    # Non-admins create no users and edit nobody.
    refused(gl_errors.GitlabCreateError, 403, alice.users.create, {"username": "x", "email": "x@e.com", "name": "X"})
    other = alice.users.get(created.id)
    other.name = "Mallory"
    refused(gl_errors.GitlabUpdateError, 403, other.save)
    refused(
        gl_errors.GitlabCreateError,
        409,
        admin.users.create,
        {"username": "alice2", "email": "alice@example.com", "name": "A"},
    )

    assert created.block() is True
    assert admin.users.get(created.id).state == "blocked"
    refused(gl_errors.GitlabAuthenticationError, 401, alice.auth)
    assert created.unblock() is True
    alice.auth()

    # Token listing with python-gitlab's booleans, and rotation.
    spare = created.personal_access_tokens.create({"name": "spare", "scopes": ["read_api"]})
    admin.personal_access_tokens.delete(spare.id)
    listed = admin.personal_access_tokens.list(user_id=created.id, revoked=False, get_all=True)
    assert [t.id for t in listed] == [token.id]
    assert [t.id for t in admin.personal_access_tokens.list(user_id=created.id, revoked=True)] == [spare.id]
    mine = alice.personal_access_tokens.get(token.id)
    rotated = mine.rotate()
    assert rotated["token"] != token.token and mine.token == rotated["token"]
    newer = client(live_registry, rotated["token"])
    self_rotated = newer.personal_access_tokens.get(rotated["id"]).rotate(self_rotate=True)
    newest = client(live_registry, self_rotated["token"])
    refused(gl_errors.GitlabAuthenticationError, 401, newer.auth)
    # A rotated-away token presented again revokes its whole family (GitLab's reuse detection).
    refused(gl_errors.GitlabAuthenticationError, 401, newest.auth)


# --- groups, subgroups, projects, members ----------------------------------------------------


def test_groups_projects_members_and_members_all(live_registry, admin):
    owner, as_owner = person(live_registry, "owner")
    dev, as_dev = person(live_registry, "dev")
    stranger, as_stranger = person(live_registry, "stranger")

    acme = as_owner.groups.create({"name": "Acme", "path": "acme", "visibility": "internal"})
    sub = as_owner.groups.create({"name": "Sub", "path": "sub", "parent_id": acme.id, "visibility": "private"})
    tools = as_owner.projects.create({"name": "tools", "namespace_id": sub.id})
    top = as_owner.projects.create({"name": "top", "namespace_id": acme.id, "visibility": "internal"})
    personal = as_stranger.projects.create({"name": "mine"})

    assert [g.id for g in as_owner.groups.list(top_level_only=True, get_all=True)] == [acme.id]
    assert {g.id for g in as_owner.groups.list(top_level_only=False, get_all=True)} == {acme.id, sub.id}
    assert [g.id for g in acme.subgroups.list(get_all=True)] == [sub.id]
    assert [p.id for p in acme.projects.list(get_all=True)] == [top.id]
    assert {p.id for p in acme.projects.list(include_subgroups=True, get_all=True)} == {tools.id, top.id}
    assert [p.id for p in acme.projects.list(include_subgroups=True, visibility="internal")] == [top.id]
    # python-gitlab's own example: projects.list(owned=True) lists the caller's personal projects only.
    assert [p.id for p in as_stranger.projects.list(owned=True, get_all=True)] == [personal.id]
    assert personal.id not in [p.id for p in admin.projects.list(owned=True, get_all=True)]

    project = as_owner.projects.get(tools.id)
    project.description = "Internal tools"
    project.save()
    assert as_owner.projects.get("acme/sub/tools").description == "Internal tools"

    # Members: direct on the group, direct on the project, and everyone on members_all.
    acme.members.create({"user_id": dev.pk, "access_level": AccessLevel.REPORTER})
    tools.members.create({"user_id": dev.pk, "access_level": AccessLevel.DEVELOPER})
    assert {m.username: m.access_level for m in tools.members.list(get_all=True)} == {"dev": 30}
    everyone = {m.username: m.access_level for m in tools.members_all.list(get_all=True)}
    assert everyone == {"owner": 50, "dev": 30}
    assert tools.members_all.get(owner.pk).access_level == 50
    assert {m.username for m in sub.members_all.list(get_all=True)} == {"owner", "dev"}
    assert sub.members_all.get(dev.pk).access_level == 20
    refused(gl_errors.GitlabGetError, 404, tools.members.get, owner.pk)  # inherited, not direct
    member = acme.members.get(dev.pk)
    member.access_level = AccessLevel.MAINTAINER
    member.save()
    assert acme.members.get(dev.pk).access_level == 40
    assert tools.members_all.get(dev.pk).access_level == 40
    acme.members.delete(dev.pk)
    assert Membership.objects.filter(user=dev, group__path="acme").count() == 0

    # Refusals: what a stranger cannot see is missing; a developer cannot manage members.
    refused(gl_errors.GitlabGetError, 404, as_stranger.projects.get, tools.id)
    refused(gl_errors.GitlabListError, 404, as_stranger.projects.get(tools.id, lazy=True).members_all.list)
    refused(gl_errors.GitlabListError, 404, as_stranger.groups.get(sub.id, lazy=True).subgroups.list)
    dev_tools = as_dev.projects.get(tools.id)
    refused(gl_errors.GitlabCreateError, 403, dev_tools.members.create, {"user_id": stranger.pk, "access_level": 10})
    refused(gl_errors.GitlabCreateError, 400, as_owner.projects.create, {"name": "tools", "namespace_id": sub.id})


def test_pagination_with_get_all_and_iterator_over_45_items(live_registry, admin):
    group = GroupFactory(path="many", visibility="public")
    made = [ProjectFactory(group=group, path=f"p{n:02}", visibility="public").pk for n in range(45)]
    newest_first = made[::-1]  # GitLab's default order for projects: created_at, desc
    many = admin.groups.get(group.pk)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first_page = many.projects.list()
    assert len(first_page) == 20 and [p.id for p in first_page] == newest_first[:20]
    assert any("get_all=True" in str(w.message) for w in caught)  # python-gitlab saw there is more

    assert [p.id for p in many.projects.list(get_all=True)] == newest_first
    assert [p.id for p in many.projects.list(get_all=True, per_page=7, order_by="id", sort="asc")] == made
    iterator = many.projects.list(iterator=True, per_page=10)
    assert (iterator.total, iterator.total_pages, iterator.per_page) == (45, 5, 10)
    assert len(iterator) == 45
    assert [p.id for p in iterator] == newest_first
    assert [p.id for p in many.projects.list(page=5, per_page=10)] == newest_first[40:]
    assert many.projects.list(page=6, per_page=10) == []
    assert [p.id for p in admin.projects.list(iterator=True, per_page=20, order_by="path", sort="asc")] == made
    refused(gl_errors.GitlabListError, 400, admin.projects.list, order_by="stars")


# --- deploy tokens, access tokens ------------------------------------------------------------


def test_deploy_tokens_project_group_and_instance(live_registry, admin):
    owner, as_owner = person(live_registry, "owner")
    dev, as_dev = person(live_registry, "dev")
    acme = as_owner.groups.create({"name": "Acme", "path": "acme"})
    tools = as_owner.projects.create({"name": "tools", "namespace_id": acme.id})
    tools.members.create({"user_id": dev.pk, "access_level": AccessLevel.DEVELOPER})

    scopes = ["read_package_registry", "write_package_registry"]
    kept = tools.deploytokens.create({"name": "ci", "scopes": scopes, "expires_at": NEXT_YEAR})
    assert kept.token.startswith("gldt-") and kept.scopes == scopes
    gone = tools.deploytokens.create({"name": "old", "scopes": ["read_package_registry"]})
    tools.deploytokens.delete(gone.id)
    grouped = acme.deploytokens.create({"name": "group-ci", "scopes": scopes})
    acme_gone = acme.deploytokens.create({"name": "group-old", "scopes": scopes})
    acme_gone.delete()

    assert [t.id for t in tools.deploytokens.list(get_all=True)] == [kept.id, gone.id]
    assert tools.deploytokens.get(kept.id).name == "ci"
    assert [t.id for t in acme.deploytokens.list(get_all=True)] == [grouped.id, acme_gone.id]
    assert [t.id for t in acme.deploytokens.list(active=True, get_all=True)] == [grouped.id]
    assert [t.id for t in tools.deploytokens.list(active=False, get_all=True)] == [gone.id]
    # GitLab's `active` filter, as python-gitlab sends it (True/False).
    assert [t.id for t in admin.deploytokens.list(active=True, get_all=True)] == [kept.id, grouped.id]
    assert {t.id for t in admin.deploytokens.list(active=False, get_all=True)} == {gone.id, acme_gone.id}

    # Refusals.
    refused(gl_errors.GitlabListError, 403, as_owner.deploytokens.list)  # instance list: admins only
    dev_tools = as_dev.projects.get(tools.id)
    refused(gl_errors.GitlabCreateError, 403, dev_tools.deploytokens.create, {"name": "x", "scopes": scopes})
    refused(gl_errors.GitlabCreateError, 400, tools.deploytokens.create, {"name": "x", "scopes": ["write_repository"]})
    refused(gl_errors.GitlabDeleteError, 404, tools.deploytokens.delete, gone.id)
    # A deploy token is no personal token: unknown as PRIVATE-TOKEN.
    with_deploy = gitlab.Gitlab(live_registry.url, private_token=kept.token)
    refused(gl_errors.GitlabAuthenticationError, 401, with_deploy.projects.list)


def test_project_and_group_access_tokens(live_registry, admin):
    owner, as_owner = person(live_registry, "owner")
    acme = as_owner.groups.create({"name": "Acme", "path": "acme"})
    tools = as_owner.projects.create({"name": "tools", "namespace_id": acme.id})

    for resource in (tools, acme):
        token = resource.access_tokens.create(
            {"name": "bot", "scopes": ["api"], "access_level": AccessLevel.DEVELOPER, "expires_at": NEXT_YEAR}
        )
        assert token.token.startswith("glpat-") and token.access_level == 30
        assert [t.id for t in resource.access_tokens.list(get_all=True)] == [token.id]
        assert resource.access_tokens.get(token.id).name == "bot"
        bot = client(live_registry, token.token)
        assert bot.user.bot is True

        rotated = resource.access_tokens.get(token.id).rotate()
        assert rotated["token"] != token.token and rotated["access_level"] == 30
        client(live_registry, rotated["token"])

        active = resource.access_tokens.list(active=True, get_all=True)
        assert [t.id for t in active] == [rotated["id"]]
        resource.access_tokens.delete(rotated["id"])
        assert resource.access_tokens.list(active=True) == []
        refused(gl_errors.GitlabAuthenticationError, 401, bot.auth)  # the rotated-away token
        refused(
            gl_errors.GitlabCreateError,
            400,
            resource.access_tokens.create,
            {"name": "x", "scopes": ["api"], "access_level": 60},
        )


# --- the job-token scope and its allowlists --------------------------------------------------


def test_job_token_scope_and_allowlists(live_registry, admin):
    owner, as_owner = person(live_registry, "owner")
    acme = as_owner.groups.create({"name": "Acme", "path": "acme"})
    tools = as_owner.projects.create({"name": "tools", "namespace_id": acme.id})
    app = as_owner.projects.create({"name": "app", "namespace_id": acme.id})

    scope = tools.job_token_scope.get()
    assert scope.inbound_enabled is True
    scope.enabled = False
    scope.save()
    assert tools.job_token_scope.get().inbound_enabled is False
    assert Project.objects.get(pk=tools.id).ci_job_token_scope_enabled is False
    scope = tools.job_token_scope.get()
    scope.enabled = True
    scope.save()
    scope.refresh()
    assert scope.inbound_enabled is True

    added = scope.allowlist.create({"target_project_id": app.id})
    assert added.target_project_id == app.id
    assert [p.id for p in scope.allowlist.list(get_all=True)] == [tools.id, app.id]
    added_group = scope.groups_allowlist.create({"target_group_id": acme.id})
    assert added_group.target_group_id == acme.id
    assert [g.id for g in scope.groups_allowlist.list(get_all=True)] == [acme.id]
    refused(gl_errors.GitlabCreateError, 400, scope.allowlist.create, {"target_project_id": app.id})
    scope.allowlist.delete(app.id)
    scope.groups_allowlist.delete(acme.id)
    assert [p.id for p in scope.allowlist.list(get_all=True)] == [tools.id]
    refused(gl_errors.GitlabDeleteError, 404, scope.allowlist.delete, app.id)

    dev, as_dev = person(live_registry, "dev")
    tools.members.create({"user_id": dev.pk, "access_level": AccessLevel.DEVELOPER})
    refused(gl_errors.GitlabGetError, 403, as_dev.projects.get(tools.id, lazy=True).job_token_scope.get)


# --- packages, package files, generic upload and download ------------------------------------


def test_packages_package_files_and_generic_packages(live_registry, admin, tmp_path):
    owner, as_owner = person(live_registry, "owner")
    reporter, as_reporter = person(live_registry, "reporter")
    acme = as_owner.groups.create({"name": "Acme", "path": "acme"})
    tools = as_owner.projects.create({"name": "tools", "namespace_id": acme.id})
    tools.members.create({"user_id": reporter.pk, "access_level": AccessLevel.REPORTER})

    source = tmp_path / "tool.tar.gz"
    source.write_bytes(b"release bytes" * 1000)
    uploaded = tools.generic_packages.upload(
        package_name="tool", package_version="1.0.0", file_name="tool.tar.gz", path=str(source), select="package_file"
    )
    assert (uploaded.file_name, uploaded.size) == ("tool.tar.gz", len(source.read_bytes()))
    tools.generic_packages.upload(package_name="tool", package_version="1.0.0", file_name="notes.txt", data=b"notes")
    tools.generic_packages.upload(package_name="other", package_version="2.0.0", file_name="o.bin", data=b"o")
    downloaded = tools.generic_packages.download(package_name="tool", package_version="1.0.0", file_name="tool.tar.gz")
    assert downloaded == source.read_bytes()
    reporter_tools = as_reporter.projects.get(tools.id)
    streamed = tmp_path / "copy"
    with open(streamed, "wb") as handle:
        reporter_tools.generic_packages.download(
            package_name="tool", package_version="1.0.0", file_name="tool.tar.gz", streamed=True, action=handle.write
        )
    assert streamed.read_bytes() == source.read_bytes()

    packages = tools.packages.list(get_all=True)
    assert [(p.name, p.version, p.package_type) for p in packages] == [
        ("tool", "1.0.0", "generic"),
        ("other", "2.0.0", "generic"),
    ]
    assert [p.name for p in tools.packages.list(package_name="oth")] == ["other"]
    assert [p.name for p in acme.packages.list(get_all=True)] == ["tool", "other"]
    assert acme.packages.list(get_all=True)[0].project_path == "acme/tools"
    package = tools.packages.get(packages[0].id)
    files = package.package_files.list(get_all=True)
    assert [f.file_name for f in files] == ["tool.tar.gz", "notes.txt"]
    assert files[0].size == len(source.read_bytes())
    download = admin.http_get(
        f"/projects/{tools.id}/packages/{package.id}/package_files/{files[0].id}/download", raw=True
    )
    assert download.content == source.read_bytes()

    # A reporter reads but deletes nothing; the owner deletes a file, then the package.
    reporter_package = reporter_tools.packages.get(package.id)
    refused(gl_errors.GitlabDeleteError, 403, reporter_package.package_files.delete, files[1].id)
    refused(gl_errors.GitlabDeleteError, 403, reporter_tools.packages.delete, package.id)
    package.package_files.delete(files[1].id)
    assert [f.file_name for f in package.package_files.list()] == ["tool.tar.gz"]
    tools.packages.delete(package.id)
    assert PackageVersion.objects.get(pk=package.id).status == Status.PENDING_DESTRUCTION
    refused(gl_errors.GitlabGetError, 404, tools.packages.get, package.id)
    refused(gl_errors.GitlabDeleteError, 404, tools.packages.delete, package.id)
    refused(
        gl_errors.GitlabGetError,
        404,
        tools.generic_packages.download,
        package_name="tool",
        package_version="1.0.0",
        file_name="tool.tar.gz",
    )

    # If-Unmodified-Since older than the package: 412, nothing deleted.
    other = tools.packages.list(package_name="other")[0]
    with pytest.raises(gl_errors.GitlabDeleteError) as caught:
        tools.packages.delete(other.id, extra_headers={"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert caught.value.response_code == 412
    assert tools.packages.get(other.id).status == "default"


def test_users_list_is_paginated_for_admins(live_registry, admin):
    for n in range(44):
        UserFactory(username=f"u{n:02}")
    users = admin.users.list(iterator=True, per_page=10)
    assert users.total == 45
    assert [u.username for u in users][:2] == ["root", "u00"]
    assert User.objects.count() == 45
