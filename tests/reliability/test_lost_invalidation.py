"""A change of credentials or membership that cannot be announced to every worker is refused.

Four gunicorn workers, on a Redis of the test's own, remember a credential and its access
(registry.access_cache). That Redis is then made to refuse writes (`maxmemory 1`, `noeviction`, as
when it is full), so no epoch can change: the change must answer 503 and leave the database as it
was, the credential keeps exactly the access it still has; once Redis takes writes again the same
change succeeds and every worker refuses the credential on the very next request.
"""

import contextlib
import urllib.error
import urllib.request

import pytest
import redis

from accounts.models import AccessToken, CiJob, DeployToken, JobTokenScopeLink, Membership
from accounts.roles import AccessLevel
from registry.models import PendingEpochChange
from tests.conftest import start_live_server, stop_live_server
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
)
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

REQUESTS = 16  # four workers, each serving several


@pytest.fixture(scope="module")
def workers(django_db_setup, blob_dir, spool_dir, tmp_path_factory):
    """Four workers on a Redis of their own (it is made to refuse writes below).
    Last use recorded hourly, as in production, so that credentials are really remembered."""
    own_redis = RedisServer(tmp_path_factory.mktemp("lost-invalidation-redis")).start()
    try:
        live = start_live_server(
            blob_dir,
            spool_dir,
            tmp_path_factory.mktemp("lost-invalidation"),
            workers=4,
            PACKHOUSE_TOKEN_LAST_USED_INTERVAL="3600",
            PACKHOUSE_REDIS_URL=own_redis.url,
        )
        live.redis_url = own_redis.url
        yield live
        stop_live_server(live)
    finally:
        own_redis.stop()


@pytest.fixture(autouse=True)
def _empty_redis(workers):
    """Every test starts on an empty Redis, as every other test does (`cache.clear()`): no
    throttling counts or epochs of the one before."""
    redis.Redis.from_url(workers.redis_url).flushdb()


@contextlib.contextmanager
def redis_refusing_writes(url):
    client = redis.Redis.from_url(url)
    before = client.config_get("maxmemory")["maxmemory"], client.config_get("maxmemory-policy")["maxmemory-policy"]
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("packhouse-test-write", "x")
        yield
    finally:
        client.config_set("maxmemory", before[0])
        client.config_set("maxmemory-policy", before[1])


def call(method, url, headers):
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 - local test server
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def statuses(server, project, headers):
    url = server.api(f"projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin")
    return {call("GET", url, headers)[0] for _ in range(REQUESTS)}


def private_project_with_a_file(server, admin_headers):
    project = ProjectFactory(group=GroupFactory(visibility="private"), visibility="private")
    url = server.api(f"projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin")
    request = urllib.request.Request(url, data=b"tool", method="PUT", headers=admin_headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 201
    return project


def personal_token_revocation(project):
    token = AccessTokenFactory(user=MembershipFactory(project=project, access_level=AccessLevel.REPORTER).user)
    return (
        {"PRIVATE-TOKEN": token.plaintext},
        ("DELETE", f"personal_access_tokens/{token.pk}"),
        lambda: AccessToken.objects.get(pk=token.pk).revoked,
    )


def personal_token_rotation(project):
    token = AccessTokenFactory(user=MembershipFactory(project=project, access_level=AccessLevel.REPORTER).user)
    return (
        {"PRIVATE-TOKEN": token.plaintext},
        ("POST", f"personal_access_tokens/{token.pk}/rotate"),
        lambda: (
            AccessToken.objects.get(pk=token.pk).revoked and AccessToken.objects.filter(user=token.user).count() == 2
        ),
    )


def deploy_token_revocation(project):
    token = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    return (
        {"DEPLOY-TOKEN": token.plaintext},
        ("DELETE", f"projects/{project.pk}/deploy_tokens/{token.pk}"),
        lambda: DeployToken.objects.get(pk=token.pk).revoked,
    )


def membership_removal(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.REPORTER)
    token = AccessTokenFactory(user=user)
    return (
        {"PRIVATE-TOKEN": token.plaintext},
        ("DELETE", f"projects/{project.pk}/members/{user.pk}"),
        lambda: not Membership.objects.filter(user=user, project=project).exists(),
    )


def job_end(project):
    user = MembershipFactory(project=project, access_level=AccessLevel.DEVELOPER).user
    job = CiJobFactory(project=project, user=user, status=CiJob.Status.RUNNING)
    return (
        {"JOB-TOKEN": job.plaintext},
        ("POST", f"projects/{project.pk}/jobs/{job.pk}/finish"),
        lambda: CiJob.objects.get(pk=job.pk).status != CiJob.Status.RUNNING,
    )


def allowlist_change(project):
    source = ProjectFactory(group=project.group)
    user = UserFactory()
    MembershipFactory(user=user, project=source, access_level=AccessLevel.DEVELOPER)
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    JobTokenScopeLinkFactory(source_project=project, target_project=source)
    job = CiJobFactory(project=source, user=user, status=CiJob.Status.RUNNING)
    return (
        {"JOB-TOKEN": job.plaintext},
        ("DELETE", f"projects/{project.pk}/job_token_scope/allowlist/{source.pk}"),
        lambda: not JobTokenScopeLink.objects.filter(source_project=project, target_project=source).exists(),
    )


@pytest.mark.parametrize(
    "change",
    [
        personal_token_revocation,
        personal_token_rotation,
        deploy_token_revocation,
        membership_removal,
        job_end,
        allowlist_change,
    ],
)
def test_a_change_that_cannot_reach_every_worker_is_refused_and_later_takes_effect_at_once(workers, change):
    admin_headers = {"PRIVATE-TOKEN": AccessTokenFactory(user=AdminFactory()).plaintext}
    project = private_project_with_a_file(workers, admin_headers)
    subject_headers, (method, path), done = change(project)
    assert statuses(workers, project, subject_headers) == {200}  # remembered by every worker now

    with redis_refusing_writes(workers.redis_url):
        status, body = call(method, workers.api(path), admin_headers)
        assert status == 503, body
        assert b"nothing was changed" in body
        assert not done()
        assert statuses(workers, project, subject_headers) == {200}

    status, body = call(method, workers.api(path), admin_headers)
    assert status in (200, 202, 204), body
    assert done()
    after = statuses(workers, project, subject_headers)
    assert len(after) == 1 and after <= {401, 403, 404}, after


def test_a_publish_while_redis_refuses_writes_goes_on_and_every_worker_sees_it(workers, blob_dir):
    """Package writes go on when their epochs cannot change (registry.epochs): the epochs are
    deleted after commit (Redis takes deletions when full), so no worker answers from what it
    remembered under them, and the change is recorded to be announced again later."""
    admin_headers = {"PRIVATE-TOKEN": AccessTokenFactory(user=AdminFactory()).plaintext}
    project = private_project_with_a_file(workers, admin_headers)
    url = workers.api(f"projects/{project.pk}/packages/generic/tool/2.0.0/tool.bin")
    assert {call("GET", url, admin_headers)[0] for _ in range(REQUESTS)} == {404}  # remembered by every worker

    with redis_refusing_writes(workers.redis_url):
        request = urllib.request.Request(url, data=b"tool 2", method="PUT", headers=admin_headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.status == 201
        assert {call("GET", url, admin_headers)[0] for _ in range(REQUESTS)} == {200}
        assert PendingEpochChange.objects.count() == 1

    assert {call("GET", url, admin_headers)[0] for _ in range(REQUESTS)} == {200}
    request = urllib.request.Request(url.replace("2.0.0", "3.0.0"), data=b"3", method="PUT", headers=admin_headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 201
    assert PendingEpochChange.objects.count() == 0  # announced after the next write
