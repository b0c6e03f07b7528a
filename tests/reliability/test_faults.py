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


def test_connections_the_database_dropped_are_replaced_not_500(developer_token, blob_dir, spool_dir, tmp_path):
    """As after a PostgreSQL restart: every connection a worker keeps is terminated by the server;
    the next requests still answer 200 (persistent connections are health-checked)."""
    from django.db import connection

    project, token = developer_token
    server = start_live_server(blob_dir, spool_dir, tmp_path, PACKHOUSE_DATABASE_CONN_MAX_AGE="600")
    try:
        generic = server.api(f"projects/{project.pk}/packages/generic/tool/1.0/tool.bin")
        payload = tmp_path / "payload"
        payload.write_bytes(b"tool")
        assert curl("-H", f"PRIVATE-TOKEN: {token}", "--upload-file", str(payload), generic) == 201
        for _ in range(8):  # every thread of the worker holds its connection now
            assert curl("-H", f"PRIVATE-TOKEN: {token}", generic) == 200
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.rowcount >= 1
        statuses = [curl("-H", f"PRIVATE-TOKEN: {token}", generic) for _ in range(16)]
        assert statuses == [200] * 16
    finally:
        stop_live_server(server)
