"""Metadata documents answered again from worker memory (registry.response_cache), through the
WSGI application gunicorn runs: no query when nothing changed, and never a stale or unauthorized
answer after a publish, a deletion, a revocation, a finished job or a lost membership."""

import json
from datetime import timedelta

import pytest
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import last_use, redis_client
from accounts.models import Membership
from accounts.roles import AccessLevel
from packhouse.wsgi import application
from registry import access_cache, response_cache, tasks
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    GroupFactory,
    ProjectFactory,
    UserFactory,
    finish,
    member,
)
from tests.formats.npm.npmdocs import publish_document
from tests.helpers import auth_headers
from tests.payloads import twine_form

pytestmark = pytest.mark.django_db

NAME = "@acme/widget"


class Answer:
    def __init__(self, status, headers, body):
        self.status_code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self):
        return json.loads(self.body)


def wsgi_get(path, **headers):
    """GET through packhouse.wsgi.application, as gunicorn calls it."""
    environ = RequestFactory().get(path, **headers).environ
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started.update(status=status, headers=response_headers)

    # As Django's test client does: keep the test's transaction open across the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return Answer(started["status"], started["headers"], body)


def another_worker():
    """What a worker that has not seen a request yet holds: no answer and no lookup of its own."""
    response_cache.store.clear()
    access_cache.memory.clear()


def queries_for(path, **headers):
    with CaptureQueriesContext(connection) as queries:
        answer = wsgi_get(path, **headers)
    return answer, len(queries)


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="web", visibility="private")


@pytest.fixture
def developer(project):
    return member(project)


@pytest.fixture
def token(developer):
    return AccessTokenFactory(user=developer)


def packument_url(project, name=NAME):
    return f"/api/v4/projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}"


def publish(client, project, version, headers, name=NAME):
    response = client.put(
        packument_url(project, name),
        data=json.dumps(publish_document(name, version)),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200, response.content


def test_a_repeated_packument_is_answered_without_a_query(client, project, token):
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)

    first, first_queries = queries_for(packument_url(project), **headers)
    second, second_queries = queries_for(packument_url(project), **headers)

    assert first.status_code == second.status_code == 200
    assert first_queries > 0
    assert second_queries == 0
    assert second.body == first.body
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Content-Type"] == "application/json"
    assert second.headers["Content-Length"] == str(len(second.body))
    assert list(second.json()["versions"]) == ["1.0.0"]


def test_if_none_match_is_answered_304_from_memory(client, project, token):
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    etag = wsgi_get(packument_url(project), **headers).headers["ETag"]

    answer, queries = queries_for(packument_url(project), HTTP_IF_NONE_MATCH=etag, **headers)

    assert answer.status_code == 304
    assert answer.headers["ETag"] == etag
    assert queries == 0


def test_a_publish_is_seen_by_the_next_request(client, project, token):
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    wsgi_get(packument_url(project), **headers)
    wsgi_get(packument_url(project), **headers)

    publish(client, project, "1.1.0", headers)

    assert sorted(wsgi_get(packument_url(project), **headers).json()["versions"]) == ["1.0.0", "1.1.0"]


def test_a_dist_tag_change_and_a_deletion_are_seen(client, project, developer):
    maintainer = member(project, AccessLevel.MAINTAINER)
    headers = auth_headers(AccessTokenFactory(user=maintainer).plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    publish(client, project, "2.0.0", headers)
    wsgi_get(packument_url(project), **headers)

    tags_url = f"/api/v4/projects/{project.pk}/packages/npm/-/package/{NAME.replace('/', '%2f')}/dist-tags/stable"
    assert client.put(tags_url, data='"1.0.0"', content_type="application/json", **headers).status_code == 204
    assert wsgi_get(packument_url(project), **headers).json()["dist-tags"]["stable"] == "1.0.0"

    tarball = f"{packument_url(project)}/-/widget-2.0.0.tgz/-rev/1"
    assert client.delete(tarball, **headers).status_code == 200
    assert list(wsgi_get(packument_url(project), **headers).json()["versions"]) == ["1.0.0"]


def test_a_revoked_token_is_refused_at_once(client, project, token):
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    assert wsgi_get(packument_url(project), **headers).status_code == 200
    assert wsgi_get(packument_url(project), **headers).status_code == 200

    token.revoke()

    assert wsgi_get(packument_url(project), **headers).status_code == 401


def test_a_finished_job_token_is_refused_at_once(client, project, developer, token):
    publish(client, project, "1.0.0", auth_headers(token.plaintext, "bearer"))
    job = CiJobFactory(project=project, user=developer)
    headers = auth_headers(job.plaintext, "job")
    assert wsgi_get(packument_url(project), **headers).status_code == 200
    assert wsgi_get(packument_url(project), **headers).status_code == 200

    finish(job)

    assert wsgi_get(packument_url(project), **headers).status_code == 401


def test_a_removed_member_loses_the_document_at_once(client, project, developer, token):
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    assert wsgi_get(packument_url(project), **headers).status_code == 200

    Membership.objects.get(user=developer, project=project).delete()

    assert wsgi_get(packument_url(project), **headers).status_code == 404


def test_a_project_made_private_challenges_anonymous_callers(client, project, token):
    publish(client, project, "1.0.0", auth_headers(token.plaintext, "bearer"))
    project.visibility = "public"
    project.save()
    assert wsgi_get(packument_url(project)).status_code == 200
    assert wsgi_get(packument_url(project)).status_code == 200

    project.visibility = "private"
    project.save()

    answer = wsgi_get(packument_url(project))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_another_credential_never_gets_a_remembered_answer(client, project, token):
    publish(client, project, "1.0.0", auth_headers(token.plaintext, "bearer"))
    assert wsgi_get(packument_url(project), **auth_headers(token.plaintext, "bearer")).status_code == 200

    outsider = AccessTokenFactory(user=UserFactory())
    assert wsgi_get(packument_url(project), **auth_headers(outsider.plaintext, "bearer")).status_code == 404
    assert wsgi_get(packument_url(project), HTTP_AUTHORIZATION="Bearer glpat-unknown").status_code == 401
    assert wsgi_get(packument_url(project)).status_code == 401


def test_gzip_and_identity_answers_are_kept_apart(client, project, token):
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    for _ in range(2):
        gzipped = wsgi_get(packument_url(project), HTTP_ACCEPT_ENCODING="gzip", **headers)
        plain = wsgi_get(packument_url(project), **headers)
        assert gzipped.headers["Content-Encoding"] == "gzip"
        assert "Content-Encoding" not in plain.headers
        assert plain.json()["name"] == NAME


def test_nothing_is_reused_when_the_epochs_are_lost(client, project, token):
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    wsgi_get(packument_url(project), **headers)

    cache.clear()  # Redis flushed or restarted: every remembered answer is unverifiable

    answer, queries = queries_for(packument_url(project), **headers)
    assert answer.status_code == 200
    assert queries > 0


def test_an_answer_is_not_remembered_past_the_token_expiry(client, project, developer):
    expiring = AccessTokenFactory(user=developer, expires_at=timezone.now() + timedelta(seconds=30))
    headers = auth_headers(expiring.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    wsgi_get(packument_url(project), **headers)

    entries = response_cache.store.values()
    assert len(entries) == 1
    assert entries[0].valid_until <= expiring.expires_at.timestamp()


def test_a_replay_past_the_last_use_interval_records_the_use_without_a_query(client, project, developer, settings):
    """The token's last use is due on every request (interval 0): a replay notes it in Redis and
    goes on replaying; the beat task's flush writes it to the row (accounts.last_use)."""
    settings.TOKEN_LAST_USED_INTERVAL = 0
    token = AccessTokenFactory(user=developer)
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    wsgi_get(packument_url(project), **headers)  # built by Django, which records the use itself
    tasks.flush_token_last_use()
    token.refresh_from_db()
    used = token.last_used_at

    answer, queries = queries_for(packument_url(project), **headers)

    assert answer.status_code == 200 and queries == 0  # replayed
    token.refresh_from_db()
    assert token.last_used_at == used  # noted, not yet written
    assert tasks.flush_token_last_use() == 1
    token.refresh_from_db()
    assert token.last_used_at > used
    assert queries_for(packument_url(project), **headers)[1] == 0  # the write changed no epoch


def test_a_replay_notes_nothing_before_the_last_use_is_due(client, project, token, settings):
    settings.TOKEN_LAST_USED_INTERVAL = 3600
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    wsgi_get(packument_url(project), **headers)
    tasks.flush_token_last_use()

    assert queries_for(packument_url(project), **headers)[1] == 0

    assert tasks.flush_token_last_use() == 0


def test_a_replay_whose_use_redis_refuses_to_note_is_answered_by_django(client, project, developer, settings):
    """Redis refuses the note (the hash's key holds a value of another type: WRONGTYPE): the
    replay gives way to Django, which answers and records the use in the row at once."""
    settings.TOKEN_LAST_USED_INTERVAL = 0
    token = AccessTokenFactory(user=developer)
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    first = wsgi_get(packument_url(project), **headers)
    token.refresh_from_db()
    used = token.last_used_at
    redis_client.client().set(redis_client.key(last_use.NOTED), "not a hash")

    answer, queries = queries_for(packument_url(project), **headers)

    assert answer.status_code == 200 and answer.body == first.body
    assert queries > 0  # Django answered
    token.refresh_from_db()
    assert token.last_used_at > used
    redis_client.client().delete(redis_client.key(last_use.NOTED))


def test_a_token_used_from_a_new_address_is_still_audited(client, project, token):
    """A replay skips Django, which notes a token's first use from an address each day
    (`token_used_from_new_ip`): an answer remembered for one address is not replayed to another
    until Django has noted it."""
    from accounts.models import AuditEvent

    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    wsgi_get(packument_url(project), REMOTE_ADDR="10.0.0.5", **headers)
    assert queries_for(packument_url(project), REMOTE_ADDR="10.0.0.5", **headers)[1] == 0  # replayed

    moved, queries = queries_for(packument_url(project), REMOTE_ADDR="10.0.0.6", **headers)
    assert moved.status_code == 200 and queries > 0  # Django answered, and noted the new address
    noted = AuditEvent.objects.filter(action="token_used_from_new_ip", token_id=token.pk)
    assert sorted(noted.filter(ip_address__startswith="10.").values_list("ip_address", flat=True)) == [
        "10.0.0.5",
        "10.0.0.6",
    ]
    assert queries_for(packument_url(project), REMOTE_ADDR="10.0.0.6", **headers)[1] == 0  # now replayed


def test_an_answer_one_worker_built_is_replayed_by_another(client, project, token):
    """Remembered answers are shared through Redis: a worker that has not built an answer
    replays the one another worker remembered, checked against the same epochs."""
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    first, built = queries_for(packument_url(project), **headers)
    another_worker()
    second, replayed = queries_for(packument_url(project), **headers)
    assert built > 0 and replayed == 0
    assert second.body == first.body and second.headers["ETag"] == first.headers["ETag"]

    publish(client, project, "1.1.0", headers)
    response_cache.store.clear()
    third, queries = queries_for(packument_url(project), **headers)
    assert queries > 0 and list(third.json()["versions"]) == ["1.0.0", "1.1.0"]  # never the old one


def test_a_job_tokens_answers_are_replayed_by_the_worker_that_built_them_and_not_shared(
    client, project, token, developer
):
    """A job's token dies with its job and a job asks for each URL once: its answers are kept by
    the worker that built them, never written to the shared store."""
    publish(client, project, "1.0.0", auth_headers(token.plaintext, "bearer"))
    job = auth_headers(CiJobFactory(project=project, user=developer).plaintext, "basic:gitlab-ci-token")
    first, built = queries_for(packument_url(project), **job)
    again, replayed = queries_for(packument_url(project), **job)
    assert first.status_code == again.status_code == 200 and again.body == first.body
    assert built > 0 and replayed == 0
    another_worker()
    elsewhere, queries = queries_for(packument_url(project), **job)
    assert elsewhere.body == first.body and queries > 0  # Django answered: nothing shared


def test_the_shared_copy_can_be_turned_off(client, project, token, settings):
    settings.RESPONSE_REUSE_SHARED = False
    headers = auth_headers(token.plaintext, "bearer")
    publish(client, project, "1.0.0", headers)
    queries_for(packument_url(project), **headers)
    another_worker()
    assert queries_for(packument_url(project), **headers)[1] > 0


def test_pypi_simple_pages_follow_uploads(client, project, token):
    headers = auth_headers(token.plaintext, "bearer")
    base = f"/api/v4/projects/{project.pk}/packages/pypi"

    def upload(name, version):
        body, content_type = twine_form(name, version)
        response = client.generic("POST", base, body, content_type=content_type, **headers)
        assert response.status_code == 201, response.content

    upload("alpha", "1.0")
    for _ in range(2):
        assert b"alpha-1.0-py3-none-any.whl" in wsgi_get(f"{base}/simple/alpha/", **headers).body
        assert b"beta" not in wsgi_get(f"{base}/simple/", **headers).body

    upload("alpha", "1.1")
    upload("beta", "1.0")

    assert b"alpha-1.1-py3-none-any.whl" in wsgi_get(f"{base}/simple/alpha/", **headers).body
    assert b"beta" in wsgi_get(f"{base}/simple/", **headers).body


def test_remembered_answers_stay_within_their_memory_limit(settings):
    """The store's limit is in real memory: many small documents (the soak's case) with their
    headers and epochs, measured with tracemalloc, stay within the limit."""
    import gc
    import tracemalloc
    import uuid

    settings.RESPONSE_REUSE_MAX_BYTES = 4 * 1024 * 1024
    store = response_cache.new_store()
    headers = [
        ("Content-Type", "application/json"),
        ("Vary", "Accept-Encoding, Accept"),
        ("Cache-Control", "private, max-age=0, must-revalidate"),
        ("Content-Encoding", "gzip"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    ]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            keys = ["epoch:identity", f"epoch:cred:{uuid.uuid4().hex}", f"epoch:pkg:{uuid.uuid4().hex}"]
            entry = response_cache.Entry(
                keys=keys,
                values=[uuid.uuid4().hex.encode() for _ in keys],
                valid_until=0.0,
                touch_due=None,
                body=uuid.uuid4().bytes * 64,  # a 1 KiB packument of one version
                headers=[(name, f"{value} {i}") for name, value in headers],
                etag=f'"{uuid.uuid4().hex}"',
            )
            store.put(uuid.uuid4().bytes, entry)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store) < 20_000  # entries were evicted
    assert held <= settings.RESPONSE_REUSE_MAX_BYTES * 1.1, held
