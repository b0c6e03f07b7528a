"""Faults: with Redis unreachable the registry still publishes and serves (cache and rate limits
degrade); with storage unreachable it answers 503, never 404, and keeps no row without its object."""

import os
import subprocess

import pytest

from accounts.roles import AccessLevel
from registry.models import Blob, PackageFile
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.payloads import npm_document

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def curl(*args):
    result = subprocess.run(
        ["curl", "--silent", "--write-out", "%{http_code}", "--output", "/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return int(result.stdout[-3:])


@pytest.fixture
def developer_token():
    project = ProjectFactory(group=GroupFactory(path="faults"), path="proj")
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return project, AccessTokenFactory(user=user).plaintext


def test_redis_down_the_registry_still_serves(developer_token, blob_dir, spool_dir, tmp_path):
    project, token = developer_token
    server = start_live_server(blob_dir, spool_dir, tmp_path, PACKHOUSE_REDIS_URL="redis://127.0.0.1:1/0")
    try:
        generic = server.api(f"projects/{project.pk}/packages/generic/tool/1.0/tool.bin")
        payload = tmp_path / "payload"
        payload.write_bytes(os.urandom(4096))
        assert curl("-H", f"PRIVATE-TOKEN: {token}", "--upload-file", str(payload), generic) == 201
        assert curl("-H", f"PRIVATE-TOKEN: {token}", generic) == 200
        npm = server.api(f"projects/{project.pk}/packages/npm/@faults%2fpkg")
        document = tmp_path / "doc.json"
        document.write_bytes(npm_document("@faults/pkg", "1.0.0"))
        status = curl(
            "-X",
            "PUT",
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            f"@{document}",
            npm,
        )
        assert status in (200, 201)
        assert curl("-H", f"Authorization: Bearer {token}", npm) == 200  # packument built without a cache
        assert curl("-H", "PRIVATE-TOKEN: glpat-wrong", generic) == 401  # no rate-limit store, still 401
        assert "Traceback" not in server.log()
    finally:
        stop_live_server(server)


def test_storage_unreachable_is_503_and_leaves_no_row(developer_token, spool_dir, tmp_path):
    project, token = developer_token
    not_a_directory = tmp_path / "storage-is-a-file"
    not_a_directory.write_text("storage gone")
    server = start_live_server(not_a_directory, spool_dir, tmp_path)
    try:
        url = server.api(f"projects/{project.pk}/packages/generic/tool/1.0/tool.bin")
        payload = tmp_path / "payload"
        payload.write_bytes(b"bytes that cannot be stored")
        assert curl("-H", f"PRIVATE-TOKEN: {token}", "--upload-file", str(payload), url) == 503
        assert PackageFile.objects.count() == 0
        assert Blob.objects.count() == 0
    finally:
        stop_live_server(server)
