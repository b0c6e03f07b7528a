"""Credentials and access levels remembered per process (registry.access_cache): a repeated
request costs no authentication or authorization query, and the same credential is judged afresh
the moment anything it depends on changes."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.jobs import finish_job
from accounts.models import Group, Membership
from accounts.roles import AccessLevel
from registry import access_cache
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    JobTokenScopeLinkFactory,
    ProjectFactory,
    UserFactory,
    member,
)
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def deep_project():
    """A private project five groups deep."""
    parent = None
    for depth in range(5):
        parent = GroupFactory(path=f"g{depth}", parent=parent, visibility="private")
    return ProjectFactory(group=parent, path="lib", visibility="private")


@pytest.fixture
def root_group(deep_project):
    return Group.objects.get(pk=deep_project.group_ids[0])


def file_url(project, name="a.txt"):
    return f"/api/v4/projects/{project.pk}/packages/generic/pkg/1.0.0/{name}"


def upload(client, project, headers, name="a.txt"):
    response = client.put(file_url(project, name), data=b"bytes", content_type="application/octet-stream", **headers)
    assert response.status_code == 201, response.content


def queries(client, url, headers):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    return response, [query["sql"] for query in captured.captured_queries]


def test_a_repeated_download_needs_no_query_before_its_first_byte(client, deep_project, root_group):
    user = member(root_group)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")
    upload(client, deep_project, headers)
    access_cache.memory.clear()  # as in a worker that has not seen this caller yet

    first, first_sql = queries(client, file_url(deep_project), headers)
    second, second_sql = queries(client, file_url(deep_project), headers)

    assert first.status_code == second.status_code == 200
    # First: token, project, effective level (one query whatever the depth), then the file.
    assert len(first_sql) == 4
    assert sum("accounts_" in sql for sql in first_sql) == 3
    assert second_sql == []
    assert b"".join(second.streaming_content) == b"bytes"


def test_remembered_file_lookups_follow_uploads_and_deletions(client, deep_project, root_group):
    user = member(root_group, AccessLevel.MAINTAINER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")
    upload(client, deep_project, headers)
    assert b"".join(client.get(file_url(deep_project), **headers).streaming_content) == b"bytes"

    response = client.put(file_url(deep_project), data=b"newer", content_type="text/plain", **headers)
    assert response.status_code == 201
    assert b"".join(client.get(file_url(deep_project), **headers).streaming_content) == b"newer"

    package_id = client.get(f"/api/v4/projects/{deep_project.pk}/packages", **headers).json()[0]["id"]
    assert client.delete(f"/api/v4/projects/{deep_project.pk}/packages/{package_id}", **headers).status_code == 204
    assert client.get(file_url(deep_project), **headers).status_code == 404


def test_a_revoked_token_is_refused_on_the_next_request(client, deep_project, root_group):
    user = member(root_group)
    token = AccessTokenFactory(user=user)
    headers = auth_headers(token.plaintext, "bearer")
    upload(client, deep_project, headers)
    assert client.get(file_url(deep_project), **headers).status_code == 200

    token.revoke()

    assert client.get(file_url(deep_project), **headers).status_code == 401


def test_a_token_is_refused_once_its_expiry_passes(client, deep_project, root_group, monkeypatch):
    user = member(root_group)
    token = AccessTokenFactory(user=user, expires_at=timezone.now() + timedelta(hours=1))
    headers = auth_headers(token.plaintext, "bearer")
    upload(client, deep_project, headers)
    assert client.get(file_url(deep_project), **headers).status_code == 200

    later = timezone.now() + timedelta(hours=2)  # time passes: nothing is written, no epoch changes
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert client.get(file_url(deep_project), **headers).status_code == 401


def test_a_lost_membership_hides_the_project_on_the_next_request(client, deep_project, root_group):
    user = member(root_group)
    membership = Membership.objects.get(user=user)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")
    upload(client, deep_project, headers)
    assert client.get(file_url(deep_project), **headers).status_code == 200

    membership.delete()

    assert client.get(file_url(deep_project), **headers).status_code == 404


def test_a_lowered_role_is_refused_writes_on_the_next_request(client, deep_project, root_group):
    user = member(root_group)
    membership = Membership.objects.get(user=user)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")
    upload(client, deep_project, headers, "a.txt")

    membership.access_level = AccessLevel.REPORTER
    membership.save()

    response = client.put(file_url(deep_project, "b.txt"), data=b"x", content_type="text/plain", **headers)
    assert response.status_code == 403


def test_a_blocked_user_is_refused_on_the_next_request(client, deep_project, root_group):
    user = member(root_group)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")
    upload(client, deep_project, headers)
    assert client.get(file_url(deep_project), **headers).status_code == 200

    user.is_active = False
    user.save()

    assert client.get(file_url(deep_project), **headers).status_code == 401


def test_a_finished_job_is_refused_on_the_next_request(client, deep_project, root_group):
    user = member(root_group)
    job = CiJobFactory(project=deep_project, user=user)
    headers = auth_headers(job.plaintext, "job")
    upload(client, deep_project, headers)
    assert client.get(file_url(deep_project), **headers).status_code == 200

    finish_job(job)

    assert client.get(file_url(deep_project), **headers).status_code == 401


def test_an_allowlist_change_applies_to_a_running_job_at_once(client, deep_project, root_group):
    user = member(root_group)
    owner_headers = auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")
    upload(client, deep_project, owner_headers)
    other = ProjectFactory(group=deep_project.group, path="app")
    job = CiJobFactory(project=other, user=user)
    headers = auth_headers(job.plaintext, "job")
    deep_project.ci_job_token_scope_enabled = True
    deep_project.save()
    assert client.get(file_url(deep_project), **headers).status_code == 404  # not allowlisted: hidden

    link = JobTokenScopeLinkFactory(source_project=deep_project, target_project=other)
    assert client.get(file_url(deep_project), **headers).status_code == 200

    link.delete()
    assert client.get(file_url(deep_project), **headers).status_code == 404


def test_a_project_made_private_challenges_anonymous_callers(client, deep_project, root_group):
    user = member(root_group)
    upload(client, deep_project, auth_headers(AccessTokenFactory(user=user).plaintext, "bearer"))
    for group in Group.objects.all():
        group.visibility = "public"
        group.save()
    deep_project.visibility = "public"
    deep_project.save()
    assert client.get(file_url(deep_project)).status_code == 200

    deep_project.visibility = "private"
    deep_project.save()

    response = client.get(file_url(deep_project))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_a_deleted_deploy_token_is_refused_on_the_next_request(client, deep_project, root_group):
    user = member(root_group)
    upload(client, deep_project, auth_headers(AccessTokenFactory(user=user).plaintext, "bearer"))
    token = DeployTokenFactory(project=deep_project, username="deployer")
    headers = auth_headers(token.plaintext, "basic:deployer")
    assert client.get(file_url(deep_project), **headers).status_code == 200

    token.delete()

    assert client.get(file_url(deep_project), **headers).status_code == 401


def test_memberships_ending_today_end_at_midnight(client, deep_project, root_group, monkeypatch):
    user = member(root_group, expires_at=timezone.now().date())
    headers = auth_headers(AccessTokenFactory(user=user).plaintext, "bearer")
    upload(client, deep_project, headers)
    assert client.get(file_url(deep_project), **headers).status_code == 200

    tomorrow = timezone.now() + timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: tomorrow)

    assert client.get(file_url(deep_project), **headers).status_code == 404
    assert Membership.objects.filter(user=user).count() == 1


def test_a_sign_in_or_a_recorded_use_forgets_nothing_a_real_change_does(client, settings):
    """Bookkeeping (last_login on a web sign-in, a token's last use) changes nobody's access, so it
    leaves the identity epoch alone; deactivating the same user changes it."""
    from registry import epochs

    user = UserFactory()
    before = epochs.current([epochs.IDENTITY])
    assert client.post("/users/sign_in", {"username": user.username, "password": "password-123"}).status_code == 302
    user.refresh_from_db()
    assert user.last_login is not None
    token = AccessTokenFactory(user=user)
    token.last_used_at = timezone.now()
    token.save(update_fields=["last_used_at"])
    assert epochs.current([epochs.IDENTITY]) == before

    user.is_active = False
    user.save()
    assert epochs.current([epochs.IDENTITY]) != before
