"""Reused metadata answers in a real gunicorn worker while another process writes: the writer
(this test process, through the ORM, and clients through HTTP) changes epochs in Redis, and the
worker's next answer follows at once."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from accounts.roles import AccessLevel
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.npm.npmdocs import publish_document

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

NAME = "@acme/live"


@pytest.fixture
def server(blob_dir, spool_dir, tmp_path):
    # Last use recorded hourly, as in production, so that answers are actually replayed.
    live = start_live_server(blob_dir, spool_dir, tmp_path, PACKHOUSE_TOKEN_LAST_USED_INTERVAL="3600")
    yield live
    stop_live_server(live)


def call(method, url, token=None, body=None):
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - local test server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_worker_follows_writes_and_revocations_from_other_processes(server):
    project = ProjectFactory(group=GroupFactory(path="acme"), path="live")
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=user)
    url = server.api(f"projects/{project.pk}/packages/npm/{NAME.replace('/', '%2f')}")

    def versions():
        status, body = call("GET", url, token.plaintext)
        assert status == 200, body
        return sorted(json.loads(body)["versions"])

    def publish(version):
        status, body = call("PUT", url, token.plaintext, json.dumps(publish_document(NAME, version)).encode())
        assert status == 200, body

    publish("1.0.0")
    assert [versions() for _ in range(5)] == [["1.0.0"]] * 5

    publish("1.1.0")  # through HTTP: the worker's own write
    assert versions() == ["1.0.0", "1.1.0"]

    # Through the ORM in this process, as a Celery task or the admin would.
    MembershipFactory(user=UserFactory(), project=project, access_level=AccessLevel.GUEST)
    assert versions() == ["1.0.0", "1.1.0"]
    token.revoke()
    assert call("GET", url, token.plaintext)[0] == 401


@pytest.fixture
def workers(blob_dir, spool_dir, tmp_path):
    live = start_live_server(blob_dir, spool_dir, tmp_path, workers=4, PACKHOUSE_TOKEN_LAST_USED_INTERVAL="3600")
    yield live
    stop_live_server(live)


def test_under_load_every_worker_answers_a_publish_and_a_revocation_at_once(workers):
    """Four workers replay the packument from memory while it is read in a loop; after each
    publish, reads on fresh connections (spread over the workers) all list the new version, and
    after a revocation all refuse the token: no worker answers from what it knew before."""
    project = ProjectFactory(group=GroupFactory(path="acme"), path="busy")
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.MAINTAINER)
    token, doomed = AccessTokenFactory(user=user), AccessTokenFactory(user=user)
    url = workers.api(f"projects/{project.pk}/packages/npm/{NAME.replace('/', '%2f')}")
    document = json.dumps(publish_document(NAME, "1.0.0")).encode()
    assert call("PUT", url, token.plaintext, document)[0] == 200

    stop = threading.Event()

    def keep_reading(credential):
        while not stop.is_set():
            call("GET", url, credential)

    readers = [threading.Thread(target=keep_reading, args=(t.plaintext,)) for t in (token, doomed) * 3]
    for reader in readers:
        reader.start()
    try:
        for minor in range(1, 16):
            version = f"1.{minor}.0"
            status, body = call("PUT", url, token.plaintext, json.dumps(publish_document(NAME, version)).encode())
            assert status == 200, body
            for credential in (token, doomed):
                answers = [call("GET", url, credential.plaintext) for _ in range(8)]
                listed = [status == 200 and version in json.loads(body)["versions"] for status, body in answers]
                assert all(listed), (version, [status for status, _ in answers])
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    # Every worker still remembers the answer for `doomed` (readers stopped: the refusals below
    # stay under the failed-authentication limit).
    doomed.revoke()
    assert [call("GET", url, doomed.plaintext)[0] for _ in range(16)] == [401] * 16


@pytest.fixture
def embedded_workers(blob_dir, spool_dir, tmp_path):
    """Two workers without Redis (the embedded default's caches): each keeps documents in its own
    memory, keyed on epochs in files both share."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    live = start_live_server(
        blob_dir, spool_dir, tmp_path, workers=2, PACKHOUSE_REDIS_URL="", PACKHOUSE_VAR_DIR=str(var_dir)
    )
    yield live
    stop_live_server(live)


def test_without_redis_every_worker_answers_a_publish_at_once(embedded_workers):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=user)
    url = embedded_workers.api(f"projects/{project.pk}/packages/npm/{NAME.replace('/', '%2f')}")

    def versions():
        status, body = call("GET", url, token.plaintext)
        assert status == 200, body
        return sorted(json.loads(body)["versions"])

    published = []
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        status, body = call("PUT", url, token.plaintext, json.dumps(publish_document(NAME, version)).encode())
        assert status == 200, body
        published.append(version)
        # Twenty reads land on both workers, each of which cached the document before this publish.
        assert [versions() for _ in range(20)] == [published] * 20
