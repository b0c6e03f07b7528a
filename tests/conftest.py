"""Test wiring: real PostgreSQL and Redis, a real blob directory, and a live server process.

- `blob_dir`: the storage directory every test (and the live server) writes blobs to; emptied
  before each test so assertions on storage see only what the test did.
- `live_registry`: a server process serving this checkout against the test database, as `make
  serve` runs it (packhouse.node: uWSGI behind nginx, nginx sending the downloads);
  PACKHOUSE_TEST_SERVER=gunicorn runs every live server as `make run` does instead.
  Tests that use it need `transactional_db` (their rows must be committed to be seen).
- `api`: a DRF APIClient with `.auth(principal_kind_token)` helpers.
- `seaweedfs`: one SeaweedFS S3 server for the session (tests/seaweed.py), started when first
  asked for; `s3_storage`: a fresh bucket on it, made the blob store of the test.
"""

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from packhouse import node
from tests.helpers import free_port
from tests.seaweed import Bucket, SeaweedFS

ROOT = Path(__file__).resolve().parent.parent
# The shape of the live servers: "node", as `make serve` runs Packhouse (uWSGI behind nginx), or
# "gunicorn", as `make run` does.
TEST_SERVER = os.environ.get("PACKHOUSE_TEST_SERVER", "node")


# Seconds each test file took in a recorded run (scripts/test_durations.py writes it).
FILE_DURATIONS = json.loads((Path(__file__).parent / "file_durations.json").read_text())


def pytest_collection_modifyitems(config, items):
    """The longest files run first, each file's tests kept together: with pytest-xdist
    (`make test`: `--dist loadfile --no-loadscope-reorder`) each file goes whole to the next free
    worker in this order, so the short files are left to fill the end and no worker finishes
    long after the others. Files not in tests/file_durations.json count as short."""
    root = config.rootpath
    items.sort(key=lambda item: -FILE_DURATIONS.get(item.path.relative_to(root).as_posix(), 0.0))


@pytest.fixture(scope="session")
def blob_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("blobs")


@pytest.fixture(scope="session")
def spool_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(autouse=True)
def _isolated_storage(settings, blob_dir, spool_dir):
    """Every test starts with an empty blob store and an empty cache."""
    for child in blob_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blob_dir)},
        },
    }
    settings.SPOOL_DIR = spool_dir
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()  # a throwaway directory: nothing to flush


@pytest.fixture
def s3_storage(_isolated_storage, settings, seaweedfs):
    """A new bucket as the `packages` storage (a test that stops the server gets it back running)."""
    from packhouse.settings import _blob_storage

    if not seaweedfs.running:
        seaweedfs.start()
    bucket = Bucket(seaweedfs, seaweedfs.new_bucket())
    settings.STORAGES = {**settings.STORAGES, "packages": _blob_storage(bucket.storage_url)}
    yield bucket
    if not seaweedfs.running:
        seaweedfs.start()


def _free_port():
    return free_port()


class LiveRegistry:
    def __init__(self, process, url, blob_dir, log_path, shape="gunicorn"):
        self.shape = shape
        self.process = process
        self.url = url
        self.blob_dir = blob_dir
        self.log_path = log_path

    @property
    def host(self):
        return self.url.split("://", 1)[1]

    def api(self, path):
        return f"{self.url}/api/v4/{path.lstrip('/')}"

    @property
    def graceful_worker_stop(self):
        """The signal that stops one worker gracefully (it finishes its requests and sends what it
        kept, then the master starts another): gunicorn's SIGTERM; uWSGI's SIGHUP (its SIGTERM to
        a worker is a brutal reload)."""
        return signal.SIGHUP if self.shape == "node" else signal.SIGTERM

    def worker_pids(self):
        if self.shape == "node":
            return node.uwsgi_workers(self.process.pid)
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def log(self):
        return Path(self.log_path).read_text(errors="replace")


def start_live_server(blob_dir, spool_dir, log_dir, workers=1, tls=None, port=None, shape=None, **env_overrides):
    """A server of this checkout on the test database (on `port`, else a free one); returns a
    LiveRegistry. `shape`: "node" (`make serve`'s uWSGI behind nginx, packhouse.node) or
    "gunicorn" (`make run`'s), by default PACKHOUSE_TEST_SERVER's. `tls`: (certificate file, key
    file) to serve https (clients that send credentials only over https); the certificate must
    name 127.0.0.1."""
    shape = shape or TEST_SERVER
    from django.db import connection

    port = port or _free_port()
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "PACKHOUSE_DATABASE_URL": database_url,
        "PACKHOUSE_STORAGE_URL": str(blob_dir),
        "PACKHOUSE_SPOOL_DIR": str(spool_dir),
        "PACKHOUSE_DATABASE_CONN_MAX_AGE": "0",
        "PACKHOUSE_TOKEN_LAST_USED_INTERVAL": "0",
        "PACKHOUSE_DOWNLOAD_COUNT_BATCH_SECONDS": "0.2",  # batched, as in production, and soon in Redis
        **env_overrides,
    }
    log_path = Path(log_dir) / f"server-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    if shape == "node":
        command = _node_command(port, workers, tls, Path(log_dir))
        # A worker the master stops while it is still loading the application (a test that
        # killed workers, stopping right after) ignores it until uWSGI's mercy runs out.
        env.setdefault("UWSGI_WORKER_RELOAD_MERCY", "10")
    else:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "packhouse.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "8",
            "--worker-class",
            "gthread",
            "--timeout",
            "300",
            *(("--certfile", str(tls[0]), "--keyfile", str(tls[1])) if tls else ()),
        ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its process group: a kill leaves none of its processes behind
    )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(tls[0])) if tls else None
    deadline = time.monotonic() + 90  # a loaded machine (parallel test workers) boots slowly
    while True:
        try:
            urllib.request.urlopen(f"{url}/-/health", timeout=5, context=context).read()  # noqa: S310
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:  # never booted: no server left behind on the test database
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                log.close()
                raise RuntimeError(Path(log_path).read_text()) from None
            time.sleep(0.2)
    server = LiveRegistry(process, url, blob_dir, log_path, shape)
    server.log_file = log
    return server


def _node_command(port, workers, tls, log_dir):
    """The command of a live server as a node of `make serve` (packhouse.node: uWSGI behind nginx,
    nginx sending the files of local storage) listening on `port`, its state in a short directory
    of its own (a socket's path has a length limit)."""
    state_dir = tempfile.mkdtemp(prefix="node-", dir=log_dir if len(str(log_dir)) < 60 else None)
    return [
        sys.executable,
        *("-m", "packhouse.node", "--listen", f"127.0.0.1:{port}", "--processes", str(workers)),
        *("--state-dir", state_dir, "--nginx-workers", "1"),
        *(("--tls", str(tls[0]), str(tls[1])) if tls else ()),
    ]


def stop_live_server(server):
    server.process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):  # a worker still finishing a request: no test waits
        server.process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # whatever of its process group is left
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    server.log_file.close()


@pytest.fixture(scope="session")
def live_registry(django_db_setup, django_db_blocker, blob_dir, spool_dir, tmp_path_factory):
    server = start_live_server(blob_dir, spool_dir, tmp_path_factory.mktemp("live"))
    yield server
    stop_live_server(server)


@pytest.fixture(scope="session")
def live_registry_s3(django_db_setup, django_db_blocker, seaweedfs, spool_dir, tmp_path_factory):
    """A gunicorn process like `live_registry`, its blobs in a bucket on the session's SeaweedFS
    (`.bucket`): downloads answer with presigned links where the format allows them."""
    bucket = Bucket(seaweedfs, seaweedfs.new_bucket())
    server = start_live_server(bucket.storage_url, spool_dir, tmp_path_factory.mktemp("live-s3"))
    server.bucket = bucket
    yield server
    stop_live_server(server)


def start_virtual_server(blob_dir, spool_dir, log_dir, allowed_hosts="127.0.0.1"):
    """A live Packhouse allowed to reach upstreams on `allowed_hosts` over http (instance
    settings): what the virtual registry tests pull through."""
    return start_live_server(
        blob_dir, spool_dir, log_dir, PACKHOUSE_VR_ALLOW_HTTP="true", PACKHOUSE_VR_ALLOWED_HOSTS=allowed_hosts
    )


@pytest.fixture(scope="module")
def virtual_server(django_db_setup, django_db_blocker, blob_dir, spool_dir, tmp_path_factory):
    server = start_virtual_server(blob_dir, spool_dir, tmp_path_factory.mktemp("virtual-live"))
    yield server
    stop_live_server(server)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def local_upstreams_allowed(settings):
    """Virtual registries: test upstreams run on 127.0.0.1 over http, the instance allows that
    explicitly (`pytest.mark.usefixtures("local_upstreams_allowed")`)."""
    settings.VR_ALLOW_HTTP = True
    settings.VR_ALLOW_LOCAL_NETWORK = True
