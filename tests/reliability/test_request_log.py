"""PACKHOUSE_LOG_FORMAT=json on a live server: one JSON line per request (replayed answers
included) with its request id (the one answered in X-Request-Id), user, credential kind and id,
project, format, status, bytes and duration; never a secret."""

import io
import json
import logging
import re
import subprocess
import time

import pytest

from accounts.roles import AccessLevel
from tests.conftest import start_live_server, stop_live_server
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def curl(*args):
    """(status, X-Request-Id) of a request."""
    result = subprocess.run(
        ["curl", "--silent", "--output", "/dev/null", "--dump-header", "-", "--write-out", "%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    headers, status = result.stdout[:-3], int(result.stdout[-3:])
    request_id = next(
        (line.split(":", 1)[1].strip() for line in headers.splitlines() if line.lower().startswith("x-request-id:")),
        None,
    )
    return status, request_id


def request_lines(log):
    lines = {}
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if "request_id" in entry:
                lines[entry["request_id"]] = entry
    return lines


def test_one_json_line_per_request(blob_dir, spool_dir, tmp_path):
    project = ProjectFactory(group=GroupFactory(path="acme"), path="tools", visibility="public")
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=user)
    deploy = DeployTokenFactory(project=project)
    server = start_live_server(
        blob_dir, spool_dir, tmp_path, PACKHOUSE_LOG_FORMAT="json", PACKHOUSE_TOKEN_LAST_USED_INTERVAL="3600"
    )
    try:
        url = server.api(f"projects/{project.pk}/packages/generic/tool/1.0/tool.bin")
        payload = tmp_path / "payload"
        payload.write_bytes(b"y" * 1234)
        upload = curl("--header", f"PRIVATE-TOKEN: {token.plaintext}", "--upload-file", str(payload), url)
        download = curl("--header", f"DEPLOY-TOKEN: {deploy.plaintext}", url)
        refused = curl("--header", "PRIVATE-TOKEN: glpat-not-a-token", url)
        simple = server.api(f"projects/{project.pk}/packages/pypi/simple")
        listings = [curl(simple) for _ in range(3)]  # built, then (with the epoch caches on) replayed
        log = server.log()
    finally:
        stop_live_server(server)

    lines = request_lines(log)
    assert upload[0] == 201 and download[0] == 200 and refused[0] == 401
    for status, request_id in (upload, download, refused, *listings):
        assert request_id and request_id in lines, (request_id, log[-2000:])
    request_ids = [request_id for _, request_id in (upload, download, refused, *listings)]
    assert len(set(request_ids)) == len(request_ids)
    assert all(re.fullmatch("[0-9a-f]{32}", request_id) for request_id in request_ids)
    route = (
        "api/v4/projects/<ref:project_ref>/packages/generic/<str:package_name>/<str:package_version>/<path:file_name>"
    )
    written = lines[upload[1]]
    assert {k: v for k, v in written.items() if k not in ("request_id", "duration_ms", "bytes")} == {
        "method": "PUT",
        "route": route,
        "format": "generic",
        "user": "dev",
        "credential_kind": "personal",
        "credential_id": token.pk,
        "project": "acme/tools",
        "status": 201,
    }
    assert written["duration_ms"] >= 0
    read = lines[download[1]]
    assert (read["credential_kind"], read["credential_id"], read["user"], read["status"], read["bytes"]) == (
        "deploy",
        deploy.pk,
        None,
        200,
        1234,
    )
    assert lines[refused[1]]["status"] == 401 and lines[refused[1]]["credential_id"] is None
    for _, request_id in listings:
        entry = lines[request_id]
        assert (entry["format"], entry["project"], entry["status"], entry["credential_kind"]) == (
            "pypi",
            "acme/tools",
            200,
            "anonymous",
        )
    assert len({request_id for _, request_id in (upload, download, refused, *listings)}) == 6
    assert token.plaintext not in log and deploy.plaintext not in log and "glpat-not-a-token" not in log


@pytest.mark.django_db(transaction=False)
def test_the_access_line_carries_the_second_it_was_written():
    """The line's timestamp is formatted once per second: a line written a second later has the
    later second."""
    from registry.observe import access_line

    environ = {"REMOTE_ADDR": "10.0.0.1", "REQUEST_METHOD": "GET", "RAW_URI": "/x", "SERVER_PROTOCOL": "HTTP/1.1"}
    stamps = []
    for _ in range(2):
        before = time.strftime("[%d/%b/%Y:%H:%M:%S %z]")
        line = access_line(environ, "200", "5", 0.0012)
        after = time.strftime("[%d/%b/%Y:%H:%M:%S %z]")
        assert line.startswith("10.0.0.1 - - [") and line.endswith('"GET /x HTTP/1.1" 200 5 "-" "-" 1.2ms')
        stamp = line[len("10.0.0.1 - - ") :].split("]")[0] + "]"
        assert stamp in (before, after)
        stamps.append(stamp)
        time.sleep(1.05)
    assert stamps[0] != stamps[1]


@pytest.fixture
def access_stream():
    """packhouse.access's handler writing to a buffer for the test (its configured stream after)."""
    handler = logging.getLogger("packhouse.access").handlers[0]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield handler, buffer
    handler.setStream(previous)


@pytest.mark.django_db(transaction=False)
def test_the_access_line_is_written_once_as_it_is(access_stream):
    from registry.observe import write_access_line

    handler, buffer = access_stream
    write_access_line('10.0.0.1 - - [02/Dec/2026:02:00:00 +0000] "GET /x HTTP/1.1" 200 5 "-" "-" 1.2ms')
    write_access_line("a second line")
    assert buffer.getvalue() == (
        '10.0.0.1 - - [02/Dec/2026:02:00:00 +0000] "GET /x HTTP/1.1" 200 5 "-" "-" 1.2ms\na second line\n'
    )


@pytest.mark.django_db(transaction=False)
def test_an_access_log_configured_otherwise_is_obeyed(access_stream):
    """A formatter or a filter given to packhouse.access's handler applies to the line."""
    from registry.observe import write_access_line

    handler, buffer = access_stream
    formatter = handler.formatter
    handler.setFormatter(logging.Formatter("access %(levelname)s %(message)s"))
    try:
        write_access_line("formatted")
        handler.setFormatter(formatter)
        write_access_line("plain again")
        handler.addFilter(lambda record: "secret" not in record.getMessage())
        write_access_line("a secret line")
        write_access_line("a filtered-in line")
    finally:
        handler.setFormatter(formatter)
        handler.filters.clear()
    assert buffer.getvalue() == "access INFO formatted\nplain again\na filtered-in line\n"
