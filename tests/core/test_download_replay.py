"""Downloads answered again without Django (registry.response_cache, issue 23): a repeated download
of a file on the local disk is sent from its file by the WSGI layer, counted like any download,
and answered exactly as Django answers it; never after a revocation, a lost membership or a
deletion; a file gone from the disk gets today's error, never a short body; Range and conditional
requests, HEAD and the object store keep Django's answers; behind nginx (X-Accel-Redirect) the
replay is Django's header-only answer again.

In process (packhouse.wsgi.application called as gunicorn calls it): whether Django ran is seen by
its request_started signal, and queries are counted. Through a live gunicorn (sendfile): the
replays are read from /-/metrics."""

import hashlib
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core import signals
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership
from accounts.roles import AccessLevel
from registry import download_counts
from registry.models import Blob, PackageVersion
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.helpers import auth_headers
from tests.payloads import npm_document, twine_form
from tests.reliability.test_download_counts import eventually, pending
from tests.reliability.test_metrics import scrape, value

pytestmark = pytest.mark.django_db

PAYLOAD = os.urandom(256 * 1024) + b"end"  # not a multiple of any block size
BURST = 8 * 25  # eight clients, twenty-five downloads each


class Answer:
    def __init__(self, status, headers, body, queries, django_ran):
        self.status = int(status.split()[0])
        self.headers = {name: value for name, value in headers if name != "X-Request-Id"}
        self.body = body
        self.queries = queries
        self.django_ran = django_ran

    def same_as(self, other):
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)


def wsgi(path, method="GET", **headers):
    """A request through packhouse.wsgi.application as gunicorn makes it (no `wsgi.file_wrapper`
    here: the file is read in blocks), its body read and the answer closed."""
    from packhouse.wsgi import application

    environ = RequestFactory().generic(method, path, **headers).environ
    started = {}
    django_ran = []

    def start_response(status, response_headers, exc_info=None):
        started.update(status=status, headers=list(response_headers))

    def note(**kwargs):
        django_ran.append(True)

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.request_started.connect(note)
    try:
        with CaptureQueriesContext(connection) as queries:
            result = application(environ, start_response)
            body = b"".join(result)
            if hasattr(result, "close"):
                result.close()
    finally:
        signals.request_started.disconnect(note)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return Answer(started["status"], started["headers"], body, len(queries), bool(django_ran))


@pytest.fixture
def world(client):
    """A private project, a maintainer's token (its first use already recorded) and a generic file."""
    project = ProjectFactory(group=GroupFactory(path="acme"), path="tools", visibility="private")
    user = member(project, AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=user)
    headers = auth_headers(token.plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    response = client.put(url, data=PAYLOAD, content_type="application/octet-stream", **headers)
    assert response.status_code == 201, response.content
    assert wsgi(url.replace("tool.bin", "none.bin"), **headers).status == 404  # the token's first use
    download_counts.flush()
    return project, user, token, headers, url


def blob_key():
    sha256 = hashlib.sha256(PAYLOAD).hexdigest()
    assert Blob.objects.filter(sha256=sha256).exists()
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def blob_path(blob_dir):
    return blob_dir / "blobs" / blob_key()


def test_a_repeated_download_is_sent_from_its_file_without_django(world):
    _, _, _, headers, url = world

    first = wsgi(url, **headers)
    replays = [wsgi(url, **headers) for _ in range(3)]

    assert first.status == 200 and first.django_ran
    assert first.body == PAYLOAD
    for replay in replays:
        assert not replay.django_ran
        assert replay.queries == 0
        assert replay.same_as(first)  # status, every header, bytes
    assert first.headers["Content-Length"] == str(len(PAYLOAD))
    assert first.headers["ETag"] == f'"{hashlib.sha256(PAYLOAD).hexdigest()}"'


def test_every_replayed_download_is_counted(world):
    _, _, _, headers, url = world

    for _ in range(7):
        assert wsgi(url, **headers).body == PAYLOAD

    assert download_counts.flush() == 1
    version = PackageVersion.objects.get(package__name="tool")
    assert version.download_count == 7
    assert version.last_downloaded_at is not None
    assert download_counts.flush() == 0  # nothing counted twice


@pytest.mark.parametrize(
    "conditional",
    [
        {"HTTP_RANGE": "bytes=0-99"},
        {"HTTP_RANGE": "bytes=100-"},
        {"HTTP_IF_NONE_MATCH": f'"{hashlib.sha256(PAYLOAD).hexdigest()}"'},
        {"HTTP_IF_MODIFIED_SINCE": "Tue, 01 Jan 2030 00:00:00 GMT"},
        {"HTTP_IF_RANGE": f'"{hashlib.sha256(PAYLOAD).hexdigest()}"', "HTTP_RANGE": "bytes=0-9"},
    ],
)
def test_range_and_conditional_requests_get_djangos_answer(world, conditional):
    _, _, _, headers, url = world
    before = wsgi(url, **headers, **conditional)  # nothing remembered yet: Django's answer
    plain = wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran  # the plain download is now replayed

    after = wsgi(url, **headers, **conditional)

    assert after.django_ran
    assert after.same_as(before)
    assert after.same_as(plain)  # Django answers them with the whole file
    assert not wsgi(url, **headers).django_ran  # and they did not replace what is remembered


def test_head_is_answered_by_django_as_before(world):
    _, _, _, headers, url = world
    before = wsgi(url, method="HEAD", **headers)
    wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran

    after = wsgi(url, method="HEAD", **headers)

    assert before.status == 200
    assert after.django_ran
    assert after.same_as(before)
    assert after.body == b""
    assert after.headers["Content-Length"] == str(len(PAYLOAD))


def test_a_revoked_token_is_refused_at_once(world):
    _, _, token, headers, url = world
    wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran

    token.revoke()

    assert wsgi(url, **headers).status == 401


def test_a_removed_member_is_refused_at_once(world):
    project, user, _, headers, url = world
    wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran

    Membership.objects.get(user=user, project=project).delete()

    assert wsgi(url, **headers).status == 404


def test_a_deleted_package_is_not_found_at_once(client, world):
    project, _, _, headers, url = world
    wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran

    version = PackageVersion.objects.get(package__name="tool")
    assert client.delete(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **headers).status_code == 204

    assert wsgi(url, **headers).status == 404


@pytest.mark.parametrize("damage", ["removed", "truncated", "grown"])
def test_a_damaged_file_gets_todays_error_never_a_wrong_body(world, blob_dir, damage):
    _, _, _, headers, url = world
    wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran
    path = blob_path(blob_dir)
    if damage == "removed":
        path.unlink()
    else:
        with open(path, "r+b") as handle:
            handle.truncate(1000 if damage == "truncated" else len(PAYLOAD) + 1)

    answer = wsgi(url, **headers)
    todays = wsgi(url, HTTP_RANGE="bytes=0-", **headers)  # never replayed: Django's answer

    assert answer.django_ran
    assert answer.status == 503
    assert answer.same_as(todays)
    download_counts.flush()
    assert PackageVersion.objects.get(package__name="tool").download_count == 2  # the two sent whole


def test_behind_nginx_a_repeated_download_is_handed_to_nginx_again_without_django(world, settings):
    settings.X_ACCEL_REDIRECT_PREFIX = "/_storage/"
    _, _, _, headers, url = world

    first = wsgi(url, **headers)
    replays = [wsgi(url, **headers) for _ in range(3)]

    assert first.django_ran
    assert first.headers["X-Accel-Redirect"] == f"/_storage/blobs/{blob_key()}"
    assert first.body == b""
    for replay in replays:
        assert not replay.django_ran
        assert replay.queries == 0
        assert replay.same_as(first)  # status, every header (X-Accel-Redirect, ETag, checksums), no body
    download_counts.flush()
    assert PackageVersion.objects.get(package__name="tool").download_count == 4


def test_behind_nginx_a_revoked_token_is_refused_at_once(world, settings):
    settings.X_ACCEL_REDIRECT_PREFIX = "/_storage/"
    _, _, token, headers, url = world
    wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran

    token.revoke()

    answer = wsgi(url, **headers)
    assert answer.status == 401
    assert "X-Accel-Redirect" not in answer.headers


def test_behind_nginx_a_file_gone_from_the_disk_gets_djangos_answer(world, blob_dir, settings):
    settings.X_ACCEL_REDIRECT_PREFIX = "/_storage/"
    _, _, _, headers, url = world
    first = wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran

    blob_path(blob_dir).unlink()
    answer = wsgi(url, **headers)

    assert answer.django_ran
    assert answer.same_as(first)  # nginx then answers for the file, as it did before replays


def test_object_store_links_are_not_remembered(client, s3_storage):
    project = ProjectFactory(visibility="private")
    headers = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER)).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    assert client.put(url, data=PAYLOAD, content_type="application/octet-stream", **headers).status_code == 201
    wsgi(url.replace("tool.bin", "none.bin"), **headers)  # the token's first use

    answers = [wsgi(url, **headers) for _ in range(3)]

    assert all(answer.django_ran for answer in answers)
    assert {answer.status for answer in answers} == {302}  # a presigned link each time


def test_another_credential_is_authorized_afresh(world):
    project, _, _, headers, url = world
    wsgi(url, **headers)
    assert not wsgi(url, **headers).django_ran
    outsider = AccessTokenFactory(user=member(ProjectFactory())).plaintext
    wsgi(url.replace("tool.bin", "none.bin"), **auth_headers(outsider))

    assert wsgi(url, **auth_headers(outsider)).status == 404
    assert wsgi(url).status == 401


# --- through a live gunicorn: sendfile, and counts after a burst ---------------------------------


@pytest.fixture(scope="module")
def replaying_server(django_db_setup, django_db_blocker, blob_dir, spool_dir, tmp_path_factory):
    """A live server recording a token's last use hourly, as in production (`live_registry`
    records it on every request, so it never replays an answer given to a token)."""
    server = start_live_server(
        blob_dir, spool_dir, tmp_path_factory.mktemp("replay-live"), PACKHOUSE_TOKEN_LAST_USED_INTERVAL="3600"
    )
    yield server
    stop_live_server(server)


def http_get(url, token):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local test server
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def http_send(url, token, method, body, content_type):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - local test server
        return response.status


def replayed(server):
    return value(scrape(server.url), "packhouse_response_reuse_total", result="replayed")


def live_world(server, level=AccessLevel.MAINTAINER):
    project = ProjectFactory(visibility="private")
    token = AccessTokenFactory(user=member(project, level)).plaintext
    api = server.api(f"projects/{project.pk}/packages")
    assert http_get(f"{api}/generic/none/1.0/none.bin", token)[0] == 404  # the token's first use
    return project, token, api


@pytest.mark.django_db(transaction=True)
def test_pypi_npm_and_generic_downloads_replayed_by_a_live_server(replaying_server):
    project, token, api = live_world(replaying_server)
    assert http_send(f"{api}/generic/tool/1.0/tool.bin", token, "PUT", PAYLOAD, "application/octet-stream") == 201
    body, content_type = twine_form("live-tool", "1.0.0", payload=PAYLOAD)
    assert http_send(f"{api}/pypi", token, "POST", body, content_type) == 201
    document = npm_document("@acme/live", "1.0.0", payload=PAYLOAD)
    assert http_send(f"{api}/npm/@acme%2flive", token, "PUT", document, "application/json") == 200
    wheel = PackageVersion.objects.get(package__name="live-tool").files.get()
    urls = {
        "generic": f"{api}/generic/tool/1.0/tool.bin",
        "pypi": f"{api}/pypi/files/{wheel.blob.sha256}/{wheel.file_name}",
        "npm": f"{api}/npm/@acme/live/-/@acme/live-1.0.0.tgz",
    }
    download_counts.flush()
    before = replayed(replaying_server)

    answers = {name: [http_get(url, token) for _ in range(4)] for name, url in urls.items()}

    assert replayed(replaying_server) - before == 3 * 3  # each route's first answer goes through Django
    for name, rows in answers.items():
        assert {row[0] for row in rows} == {200}, name
        assert len({row[2] for row in rows}) == 1, name  # the same bytes every time
        headers = [{k: v for k, v in row[1].items() if k not in ("X-Request-Id", "Date")} for row in rows]
        assert all(h == headers[0] for h in headers), name  # the same headers as Django's answer
        assert int(headers[0]["Content-Length"]) == len(rows[0][2])
    assert answers["generic"][0][2] == PAYLOAD
    assert hashlib.sha256(answers["pypi"][0][2]).hexdigest() == wheel.blob.sha256

    versions = [PackageVersion.objects.get(package__name=name) for name in ("tool", "live-tool", "@acme/live")]
    for version in versions:
        assert eventually(lambda version=version: pending(version), 4) == 4  # counted after its last byte
    assert download_counts.flush() == 3
    assert [PackageVersion.objects.get(pk=version.pk).download_count for version in versions] == [4, 4, 4]


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_replayed_downloads_adds_up(replaying_server):
    _, token, api = live_world(replaying_server, AccessLevel.DEVELOPER)
    url = f"{api}/generic/burst/1.0/burst.bin"
    assert http_send(url, token, "PUT", PAYLOAD, "application/octet-stream") == 201
    assert http_get(url, token)[2] == PAYLOAD  # remembered
    version = PackageVersion.objects.get(package__name="burst")
    assert eventually(lambda: pending(version), 1) == 1
    download_counts.flush()
    before = replayed(replaying_server)

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: http_get(url, token)[2], range(BURST)))

    assert all(body == PAYLOAD for body in bodies)
    assert replayed(replaying_server) - before == BURST
    assert eventually(lambda: pending(version), BURST) == BURST
    assert download_counts.flush() == 1
    assert PackageVersion.objects.get(pk=version.pk).download_count == 1 + BURST
    assert download_counts.flush() == 0


@pytest.mark.django_db(transaction=True)
def test_a_live_revocation_and_deletion_take_effect_on_the_next_request(replaying_server):
    project, token, api = live_world(replaying_server)
    url = f"{api}/generic/tool/1.0/tool.bin"
    assert http_send(url, token, "PUT", PAYLOAD, "application/octet-stream") == 201
    other = AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER))
    assert http_get(url.replace("tool.bin", "none.bin"), other.plaintext)[0] == 404  # its first use
    for credential in (token, other.plaintext):
        http_get(url, credential)
    before = replayed(replaying_server)
    assert http_get(url, token)[0] == http_get(url, other.plaintext)[0] == 200
    assert replayed(replaying_server) - before == 2

    other.revoke()
    assert http_get(url, other.plaintext)[0] == 401

    version = PackageVersion.objects.get(package__name="tool")
    assert http_send(f"{api}/{version.pk}", token, "DELETE", None, "text/plain") == 204
    assert http_get(url, token)[0] == 404
