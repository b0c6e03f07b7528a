"""A worker killed in the middle of an upload leaves its spool file behind; the orphan sweep
(registry.tasks.collect_orphan_objects) removes it once it is older than the grace period."""

import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest

from accounts.roles import AccessLevel
from registry import tasks
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def test_a_killed_uploads_spool_file_is_swept(blob_dir, tmp_path, settings):
    spool = tmp_path / "spool"
    spool.mkdir()
    settings.SPOOL_DIR = spool
    project = ProjectFactory()
    token = AccessTokenFactory(
        user=MembershipFactory(project=project, access_level=AccessLevel.DEVELOPER).user
    ).plaintext
    server = start_live_server(blob_dir, spool, tmp_path)
    payload = tmp_path / "big.bin"
    payload.write_bytes(os.urandom(4 * 1024 * 1024))
    url = server.api(f"projects/{project.pk}/packages/generic/big/1.0/big.bin")
    upload = subprocess.Popen(
        ["curl", "-s", "-o", "/dev/null", "--limit-rate", "256K", "-H", f"PRIVATE-TOKEN: {token}", "-T", payload, url]
    )
    try:
        deadline = time.monotonic() + 20
        while not any(path.stat().st_size for path in spool.iterdir()):
            assert time.monotonic() < deadline, "the upload never reached the spool"
            time.sleep(0.1)
        for pid in server.worker_pids():
            os.kill(pid, signal.SIGKILL)
        upload.wait(timeout=30)
    finally:
        upload.kill()
        stop_live_server(server)
    left = list(spool.iterdir())
    assert left, "a killed upload leaves its spool file"

    assert tasks.collect_orphan_objects(grace=timedelta(hours=1)) == 0  # still young
    old = time.time() - 7200
    for path in left:
        os.utime(path, (old, old))
    assert tasks.collect_orphan_objects() == len(left)
    assert list(spool.iterdir()) == []
