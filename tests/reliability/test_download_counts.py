"""Download counts are batched through Redis (registry.download_counts): no download waits on its
version's row, each process sends its downloads to Redis once per batch interval, the counts add
up after a burst of concurrent downloads, after the workers that served them are killed once they
have sent them, and after workers stopped gracefully before sending them; a killed worker loses
what it had not sent; without Redis each download still counts at once."""

import os
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import redis_client
from accounts.roles import AccessLevel
from registry import download_counts
from registry.models import PackageVersion
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

BURST = 8 * 25  # eight clients, twenty-five downloads each


def setup_file(server):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=user).plaintext
    url = server.api(f"projects/{project.pk}/packages/generic/tool/1.0/tool.bin")
    request = urllib.request.Request(url, data=b"x" * 4096, method="PUT", headers={"PRIVATE-TOKEN": token})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local test server
        assert response.status == 201
    return url, token


def download(url, token):
    request = urllib.request.Request(url, headers={"PRIVATE-TOKEN": token})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local test server
        assert response.read() == b"x" * 4096


def burst(url, token):
    errors = []

    def client():
        try:
            for _ in range(BURST // 8):
                download(url, token)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def serving(blob_dir, spool_dir, tmp_path, **env):
    server = start_live_server(blob_dir, spool_dir, tmp_path, workers=2, **env)
    yield server
    stop_live_server(server)


@pytest.fixture
def workers(blob_dir, spool_dir, tmp_path):
    yield from serving(blob_dir, spool_dir, tmp_path)


@pytest.fixture
def unhurried_workers(blob_dir, spool_dir, tmp_path):
    """Workers that keep their downloads for an hour before sending them."""
    yield from serving(blob_dir, spool_dir, tmp_path, PACKHOUSE_DOWNLOAD_COUNT_BATCH_SECONDS="3600")


def downloaded_in_a_burst(server):
    """(url, token, version) of a file downloaded BURST times, nothing else pending."""
    url, token = setup_file(server)
    download_counts.flush()
    burst(url, token)
    return url, token, PackageVersion.objects.get(package__name="tool")


def test_a_burst_of_concurrent_downloads_adds_up_once_flushed(workers):
    _, _, version = downloaded_in_a_burst(workers)
    assert eventually(lambda: pending(version), BURST) == BURST  # each counted once its last byte is sent
    assert PackageVersion.objects.get(pk=version.pk).download_count == 0  # in Redis, not yet in the row
    assert download_counts.flush() == 1
    version.refresh_from_db()
    assert version.download_count == BURST
    assert version.last_downloaded_at is not None
    assert download_counts.flush() == 0  # nothing counted twice


def test_counts_survive_the_workers_that_served_the_downloads(workers):
    url, _, version = downloaded_in_a_burst(workers)
    assert eventually(lambda: pending(version), BURST) == BURST  # sent within the batch interval
    for pid in workers.worker_pids():
        os.kill(pid, signal.SIGKILL)  # the master starts new workers
    wait_until_serving(url)
    download_counts.flush()
    assert PackageVersion.objects.get(package__name="tool").download_count == BURST


def test_workers_stopped_gracefully_send_the_downloads_they_had_kept(unhurried_workers):
    url, _, version = downloaded_in_a_burst(unhurried_workers)
    time.sleep(0.5)
    assert pending(version) == 0  # kept in the workers, one Redis call per batch rather than per download
    for pid in unhurried_workers.worker_pids():  # a graceful stop (a restart, a deploy); the master starts new ones
        os.kill(pid, unhurried_workers.graceful_worker_stop)
    assert eventually(lambda: pending(version), BURST) == BURST
    wait_until_serving(url)
    download_counts.flush()
    assert PackageVersion.objects.get(pk=version.pk).download_count == BURST


def test_a_killed_worker_loses_only_the_downloads_it_had_not_sent(unhurried_workers):
    """The bound the README states: a worker killed outright loses what it counted since its last
    batch (here an hour's, so all of the burst), and no more; the next downloads count as ever."""
    url, token, version = downloaded_in_a_burst(unhurried_workers)
    for pid in unhurried_workers.worker_pids():
        os.kill(pid, signal.SIGKILL)
    wait_until_serving(url)
    for _ in range(3):
        download(url, token)
    for pid in unhurried_workers.worker_pids():
        os.kill(pid, unhurried_workers.graceful_worker_stop)
    assert eventually(lambda: pending(version), 3) == 3
    download_counts.flush()
    assert PackageVersion.objects.get(pk=version.pk).download_count == 3


def test_without_redis_each_download_counts_at_once(blob_dir, spool_dir, tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    server = start_live_server(blob_dir, spool_dir, tmp_path, PACKHOUSE_REDIS_URL="", PACKHOUSE_VAR_DIR=str(var_dir))
    try:
        url, token = setup_file(server)
        for _ in range(3):
            download(url, token)
        # Counted right after the last byte, by the worker, while the client has its answer.
        assert eventually(lambda: PackageVersion.objects.get(package__name="tool").download_count) == 3
    finally:
        stop_live_server(server)


def test_a_download_does_not_write_its_version_row(client):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    assert client.put(url, data=b"bytes", content_type="application/octet-stream", **headers).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
        b"".join(response.streaming_content)
        response.close()  # the download is counted when Django closes the response
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    download_counts.flush()
    assert PackageVersion.objects.get().download_count == 1


def pending(version):
    """Downloads of the version counted in Redis and not yet written to its row."""
    value = redis_client.client().hget(redis_client.key(download_counts.COUNTS), version.pk)
    return int(value or 0)


def wait_until_serving(url):
    """Until a worker answers again (a HEAD, which is not a download)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5):  # noqa: S310
                return
        except urllib.error.HTTPError:
            return  # answered (401: no credentials)
        except OSError:
            assert time.monotonic() < deadline, "no worker came back"
            time.sleep(0.2)


def eventually(read, expected=3, seconds=10):
    deadline = time.monotonic() + seconds
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def test_a_download_is_counted_when_redis_does_not_know_the_script(client, monkeypatch):
    """Redis restarted (its scripts forgotten): the count is sent with its script, not lost."""
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    assert client.put(url, data=b"bytes", content_type="application/octet-stream", **headers).status_code == 201
    version = PackageVersion.objects.get()
    download_counts.flush()
    monkeypatch.setattr(download_counts, "_COUNT_SHA1", "0" * 40)  # a script Redis has never seen

    download_counts.record(version.pk)
    download_counts.record(version.pk)
    download_counts.send_batch()  # this process's batch, now rather than within the second

    assert pending(version) == 2
    assert download_counts.flush() == 1
    assert PackageVersion.objects.get(pk=version.pk).download_count == 2
