"""`/-/liveness` and `/-/readiness` (GitLab's names) on live servers: readiness reports the
database, Redis and the blob store, each with its status and latency, and is 503 while one is down."""

import json
import urllib.error
import urllib.request

import pytest

from tests.conftest import start_live_server, stop_live_server

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def checks(body):
    return {name: value[0]["status"] for name, value in body.items() if name.endswith("_check")}


def test_ready_on_s3_then_not_while_the_store_is_stopped(s3_storage, spool_dir, tmp_path):
    server = start_live_server(s3_storage.storage_url, spool_dir, tmp_path)
    try:
        assert get(f"{server.url}/-/liveness") == (200, {"status": "ok"})
        status, body = get(f"{server.url}/-/readiness")
        assert status == 200, body
        assert body["status"] == "ok"
        assert checks(body) == {"db_check": "ok", "redis_check": "ok", "storage_check": "ok"}
        assert all(isinstance(body[name][0]["latency_ms"], float) for name in checks(body))

        s3_storage.server.stop()
        status, body = get(f"{server.url}/-/readiness")
        assert status == 503
        assert body["status"] == "failed"
        assert checks(body) == {"db_check": "ok", "redis_check": "ok", "storage_check": "failed"}
        assert get(f"{server.url}/-/liveness") == (200, {"status": "ok"})  # the process is up

        s3_storage.server.start()
        assert get(f"{server.url}/-/readiness")[0] == 200
    finally:
        stop_live_server(server)


def test_not_ready_without_redis(blob_dir, spool_dir, tmp_path):
    server = start_live_server(blob_dir, spool_dir, tmp_path, PACKHOUSE_REDIS_URL="redis://127.0.0.1:1/0")
    try:
        status, body = get(f"{server.url}/-/readiness")
        assert status == 503
        assert checks(body) == {"db_check": "ok", "redis_check": "failed", "storage_check": "ok"}
        assert body["redis_check"][0]["message"] == "ConnectionError"
        assert get(f"{server.url}/-/liveness")[0] == 200
    finally:
        stop_live_server(server)
