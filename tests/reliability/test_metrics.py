"""`/-/metrics` scraped from a live server (two gunicorn workers: the counts of both, summed by
prometheus_client's multiprocess mode) after a known mix of requests; who may scrape it."""

import json
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import AccessToken
from accounts.roles import AccessLevel
from registry import tasks
from registry.models import CleanupPolicy, PackageVersion
from tests.conftest import start_live_server, stop_live_server
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.payloads import npm_document

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def curl(*args):
    result = subprocess.run(
        ["curl", "--silent", "--output", "/dev/null", "--write-out", "%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return int(result.stdout)


def scrape(url):
    with urllib.request.urlopen(f"{url}/-/metrics", timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return answer.read().decode()


def value(text, name, **labels):
    """The sum of the samples called `name` whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
def server(blob_dir, spool_dir, tmp_path):
    live = start_live_server(blob_dir, spool_dir, tmp_path, workers=2, PACKHOUSE_METRICS_DIR=str(tmp_path / "metrics"))
    yield live
    stop_live_server(live)


def test_counters_after_a_known_mix_of_requests(server, tmp_path):
    project = ProjectFactory(group=GroupFactory(path="acme"), path="tools", visibility="public")
    developer = UserFactory()
    MembershipFactory(user=developer, project=project, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=developer).plaintext
    auth = ("--header", f"PRIVATE-TOKEN: {token}")
    generic = server.api(f"projects/{project.pk}/packages/generic/tool")
    payload = tmp_path / "payload"
    payload.write_bytes(b"x" * 1000)

    for version in ("1.0", "1.1", "1.2"):  # 3 publishes, 3,000 bytes up
        assert curl(*auth, "--upload-file", str(payload), f"{generic}/{version}/tool.bin") == 201
    for _ in range(2):  # 2 downloads, 2,000 bytes down
        assert curl(*auth, f"{generic}/1.0/tool.bin") == 200
    version = PackageVersion.objects.get(version="1.2")  # GitLab's "package" id is a version's
    deleted = server.api(f"projects/{project.pk}/packages/{version.pk}")
    assert curl(*auth, "--request", "DELETE", deleted) == 204  # 1 delete

    npm = server.api(f"projects/{project.pk}/packages/npm/@acme%2fpkg")
    document = tmp_path / "doc.json"
    document.write_bytes(npm_document("@acme/pkg", "1.0.0"))
    bearer = ("--header", f"Authorization: Bearer {token}")
    assert curl(*bearer, "-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", f"@{document}", npm) in (
        200,
        201,
    )
    for _ in range(5):  # anonymous reads of a public packument: built once per worker, then replayed
        assert curl(npm) == 200

    assert curl("--header", "PRIVATE-TOKEN: glpat-unknown", f"{generic}/1.0/tool.bin") == 401
    assert curl("--header", "PRIVATE-TOKEN: glpat-unknown2", f"{generic}/1.0/tool.bin") == 401
    revoked = AccessTokenFactory(user=developer)
    AccessToken.objects.filter(pk=revoked.pk).update(revoked=True)
    assert curl("--header", f"PRIVATE-TOKEN: {revoked.plaintext}", f"{generic}/1.0/tool.bin") == 401

    created = subprocess.run(
        [
            "curl",
            "--silent",
            *auth,
            "--json",
            json.dumps({"name": "ci", "scopes": ["read_package_registry", "write_package_registry"]}),
        ]
        + [server.api(f"projects/{project.pk}/deploy_tokens")],
        capture_output=True,
        text=True,
        check=True,
    )
    deploy_token = json.loads(created.stdout)
    assert (
        curl(*auth, "--request", "DELETE", server.api(f"projects/{project.pk}/deploy_tokens/{deploy_token['id']}"))
        == 204
    )

    CleanupPolicy.objects.create(project=project, keep_n_versions=1)
    tasks.apply_cleanup_policy(project.pk)
    tasks.apply_cleanup_policy(project.pk)

    text = scrape(server.url)
    observed = {
        (name, tuple(sorted(labels.items()))): value(text, name, **labels)
        for name, labels in [
            ("packhouse_publishes_total", {"format": "generic"}),
            ("packhouse_publishes_total", {"format": "npm"}),
            ("packhouse_package_bytes_total", {"direction": "uploaded", "format": "generic"}),
            ("packhouse_package_bytes_total", {"direction": "downloaded", "format": "generic"}),
            ("packhouse_deletes_total", {"format": "", "what": "version"}),
            ("packhouse_http_requests_total", {"format": "generic", "method": "PUT", "status": "201"}),
            ("packhouse_http_requests_total", {"format": "generic", "method": "GET", "status": "200"}),
            ("packhouse_http_requests_total", {"format": "generic", "method": "GET", "status": "401"}),
            ("packhouse_http_requests_total", {"format": "npm", "method": "GET", "status": "200"}),
            ("packhouse_http_requests_total", {"format": "", "method": "DELETE", "status": "204"}),
            ("packhouse_http_request_duration_seconds_count", {"format": "generic"}),
            ("packhouse_authentication_failures_total", {"reason": "unknown"}),
            ("packhouse_authentication_failures_total", {"reason": "revoked"}),
            ("packhouse_deploy_tokens_total", {"action": "created", "scope": "read_package_registry"}),
            ("packhouse_deploy_tokens_total", {"action": "created", "scope": "write_package_registry"}),
            ("packhouse_deploy_tokens_total", {"action": "deleted", "scope": "read_package_registry"}),
            ("packhouse_deploy_tokens_total", {"action": "deleted", "scope": "write_package_registry"}),
            ("packhouse_cleanup_runs_total", {}),
        ]
    }
    expected = [3, 1, 3000, 2000, 0, 3, 2, 3, 5, 2, 8, 2, 1, 1, 1, 1, 1, 2]
    assert list(observed.values()) == expected, observed
    assert value(text, "packhouse_deletes_total", format="generic", what="version") == 1
    routes = {
        s.labels["route"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "packhouse_http_requests_total" and s.labels["format"] == "generic"
    }
    assert all("tool" not in route and "<" in route for route in routes), routes  # patterns, not paths
    assert value(text, "packhouse_http_request_duration_seconds_count", format="generic") == 8  # 3 + 2 + 3
    # Each of the 5 packument reads and the 2 downloads was either built by Django (and remembered)
    # or replayed.
    built = value(text, "packhouse_response_reuse_total", result="built")
    replayed = value(text, "packhouse_response_reuse_total", result="replayed")
    assert built + replayed == 5 + 2 and built >= 2 and replayed >= 1, (built, replayed)
    assert "packhouse_celery_queue_length" in text
    assert not PackageVersion.objects.filter(pk=version.pk).exclude(status="pending_destruction").exists()


def test_who_may_scrape(client, settings):
    settings.METRICS_ALLOWED_IPS = []  # loopback no longer enough: a token is needed
    assert client.get("/-/metrics").status_code == 401
    user = UserFactory()
    assert client.get("/-/metrics", HTTP_PRIVATE_TOKEN=AccessTokenFactory(user=user).plaintext).status_code == 403
    admin_token = AccessTokenFactory(user=AdminFactory()).plaintext
    answer = client.get("/-/metrics", HTTP_PRIVATE_TOKEN=admin_token)
    assert answer.status_code == 200
    assert b"packhouse_http_requests_total" in answer.content or b"# HELP" in answer.content
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/-/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/-/metrics", REMOTE_ADDR="192.0.2.1").status_code == 401
