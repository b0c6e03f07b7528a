"""A package write while Redis is down: the write goes on, and once Redis is back with every epoch
and cached document it held before (it persists them), the change is announced, so nothing cached
under the old epochs outlives the outage.

The registry runs on a Redis of its own, started by the test with an append-only file, stopped,
and started again on the same port from that file.
"""

import json
import urllib.error
import urllib.request

import pytest

from accounts.roles import AccessLevel
from registry.models import PendingEpochChange
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.npm.npmdocs import publish_document
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path, persistent=True).start()
    yield server
    server.stop()


def call(method, url, token, body=None):
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - local test server
    request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_publish_during_an_outage_is_announced_once_redis_answers(own_redis, blob_dir, spool_dir, tmp_path):
    server = start_live_server(
        blob_dir, spool_dir, tmp_path, PACKHOUSE_REDIS_URL=own_redis.url, PACKHOUSE_TOKEN_LAST_USED_INTERVAL="3600"
    )
    try:
        project = ProjectFactory()
        user = UserFactory()
        MembershipFactory(user=user, project=project, access_level=AccessLevel.MAINTAINER)
        token = AccessTokenFactory(user=user).plaintext

        def url(name):
            return server.api(f"projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}")

        def publish(name, version):
            document = json.dumps(publish_document(name, version)).encode()
            status, body = call("PUT", url(name), token, document)
            assert status == 200, body

        def versions():
            status, body = call("GET", url("@acme/pkg"), token)
            assert status == 200, body
            return sorted(json.loads(body)["versions"])

        publish("@acme/pkg", "1.0.0")
        assert [versions() for _ in range(3)] == [["1.0.0"]] * 3  # cached in Redis and in the worker

        own_redis.stop()
        publish("@acme/pkg", "1.1.0")  # the write goes on, and records the epochs it could not change
        assert PendingEpochChange.objects.count() == 1
        own_redis.start()  # with every epoch and document it held

        publish("@acme/other", "1.0.0")  # the next write announces what was pending
        assert PendingEpochChange.objects.count() == 0
        assert versions() == ["1.0.0", "1.1.0"]
        assert "Traceback" not in server.log()
    finally:
        stop_live_server(server)
