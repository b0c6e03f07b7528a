"""Maven through a virtual registry (spec §2.1, §3, §4, §5.4) against real upstream servers
(python's http.server on 127.0.0.1): pull-through caching, integrity, revalidation, outages,
upstream order and the local-name rule."""

import hashlib
import os
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.roles import AccessLevel
from registry.models import (
    Blob,
    CacheEntry,
    NameClaim,
    NegativeEntry,
    PackageVersion,
    RegistryUpstream,
    Upstream,
    UpstreamRule,
    VirtualRegistry,
)
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, UserFactory, member
from tests.helpers import auth_headers, stored_objects
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
JAR = "com/example/lib/1.0/lib-1.0.jar"
METADATA = "com/example/lib/maven-metadata.xml"


def write(root, relative, data, sha1=True):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if sha1 is True:
        (root / f"{relative}.sha1").write_text(hashlib.sha1(data).hexdigest())
    elif sha1:
        (root / f"{relative}.sha1").write_text(sha1)
    return data


def metadata(versions):
    listed = "".join(f"<version>{v}</version>" for v in versions)
    return (
        f"<metadata><groupId>com.example</groupId><artifactId>lib</artifactId><versioning>"
        f"<release>{versions[-1]}</release><versions>{listed}</versions></versioning></metadata>"
    ).encode()


@pytest.fixture
def upstreams(tmp_path):
    started = []

    def start(name="central"):
        root = tmp_path / name
        root.mkdir()
        server = StaticUpstream(root, log_path=tmp_path / f"{name}.log").start()
        server.root = root
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def acme():
    return GroupFactory(path="acme")


@pytest.fixture
def reader(acme):
    return auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.GUEST)).plaintext)


def registry_with(acme, *upstreams):
    registry = VirtualRegistry.objects.create(group=acme, format="maven", name=f"r{VirtualRegistry.objects.count()}")
    for position, upstream in enumerate(upstreams, start=1):
        RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=position)
    return registry


def remote(acme, server, **fields):
    return Upstream.objects.create(
        group=acme, format="maven", kind="remote", name=f"u{server.port}", url=server.url, **fields
    )


def get(client, registry, path, headers, method="get"):
    return getattr(client, method)(f"/api/v4/virtual_registries/packages/maven/{registry.pk}/{path}", **headers)


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_pull_through_caches_and_serves_from_cache(client, acme, reader, upstreams, blob_dir):
    central = upstreams()
    jar = write(central.root, JAR, b"jar bytes " * 100)
    upstream = remote(acme, central)
    registry = registry_with(acme, upstream)

    first = get(client, registry, JAR, reader)
    assert first.status_code == 200 and body(first) == jar
    assert first["X-Packhouse-Cache"] == "MISS" and first["X-Packhouse-Upstream"] == str(upstream.pk)
    assert first["X-Checksum-SHA1"] == hashlib.sha1(jar).hexdigest()
    assert first["Cache-Control"] == "private, max-age=31536000, immutable"
    entry = CacheEntry.objects.get()
    assert entry.relative_path == f"/{JAR}" and entry.verified and entry.blob.sha256 == hashlib.sha256(jar).hexdigest()
    asked = len(central.requests())

    again = get(client, registry, JAR, reader)
    assert again["X-Packhouse-Cache"] == "HIT" and body(again) == jar
    sha1 = get(client, registry, f"{JAR}.sha1", reader)
    assert sha1.status_code == 200 and sha1.content.decode() == hashlib.sha1(jar).hexdigest()
    head = get(client, registry, JAR, reader, method="head")
    assert head.status_code == 200 and head["Content-Length"] == str(len(jar))
    assert len(central.requests()) == asked  # release files are never fetched again
    assert stored_objects(blob_dir) == [Blob.objects.get().key]


def test_integrity_mismatch_is_502_and_caches_nothing(client, acme, reader, upstreams, blob_dir):
    central = upstreams()
    write(central.root, JAR, b"tampered", sha1="0" * 40)
    registry = registry_with(acme, remote(acme, central))
    response = get(client, registry, JAR, reader)
    assert response.status_code == 502
    assert response.json() == {"message": "502 Upstream integrity check failed"}
    assert not CacheEntry.objects.exists() and not Blob.objects.exists()
    assert stored_objects(blob_dir) == []


def test_file_without_checksum_is_cached_unverified(client, acme, reader, upstreams):
    central = upstreams()
    write(central.root, JAR, b"no checksum", sha1=False)
    registry = registry_with(acme, remote(acme, central))
    assert get(client, registry, JAR, reader).status_code == 200
    assert CacheEntry.objects.get().verified is False


def test_metadata_is_revalidated_after_its_validity(client, acme, reader, upstreams):
    central = upstreams()
    write(central.root, METADATA, metadata(["1.0"]))
    registry = registry_with(acme, remote(acme, central, metadata_cache_validity_hours=1))
    first = get(client, registry, METADATA, reader)
    assert first["X-Packhouse-Cache"] == "MISS" and b"<version>1.0</version>" in body(first)
    assert first["Cache-Control"] == "private, max-age=0, must-revalidate"
    assert get(client, registry, METADATA, reader)["X-Packhouse-Cache"] == "HIT"

    CacheEntry.objects.update(upstream_checked_at=timezone.now() - timedelta(hours=2))
    unchanged = get(client, registry, METADATA, reader)
    assert unchanged["X-Packhouse-Cache"] == "REVALIDATED"  # a 304 to If-Modified-Since
    assert central.requests()[-1].startswith(f"GET /{METADATA} ")

    newer = write(central.root, METADATA, metadata(["1.0", "1.1"]))
    later = time.time() + 5
    os.utime(central.root / METADATA, (later, later))
    CacheEntry.objects.update(upstream_checked_at=timezone.now() - timedelta(hours=2))
    changed = get(client, registry, METADATA, reader)
    assert changed.status_code == 200 and body(changed) == newer
    assert CacheEntry.objects.filter(status="default").count() == 1


def test_upstream_outage_serves_the_cache(client, acme, reader, upstreams):
    central = upstreams()
    jar = write(central.root, JAR, b"jar")
    write(central.root, METADATA, metadata(["1.0"]))
    write(central.root, "com/example/other/1.0/other-1.0.jar", b"never fetched")
    registry = registry_with(acme, remote(acme, central))
    assert get(client, registry, JAR, reader).status_code == 200
    assert get(client, registry, METADATA, reader).status_code == 200
    central.stop()

    cached = get(client, registry, JAR, reader)
    assert cached.status_code == 200 and body(cached) == jar and cached["X-Packhouse-Cache"] == "HIT"
    CacheEntry.objects.filter(relative_path=f"/{METADATA}").update(
        upstream_checked_at=timezone.now() - timedelta(hours=48)
    )
    stale = get(client, registry, METADATA, reader)
    assert stale.status_code == 200 and stale["X-Packhouse-Cache"] == "STALE"
    assert stale["X-Packhouse-Stale-Reason"] == "upstream-error" and int(stale["Age"]) >= 48 * 3600
    uncached = get(client, registry, "com/example/other/1.0/other-1.0.jar", reader)
    assert uncached.status_code == 503  # never 404: that sends clients elsewhere
    health = Upstream.objects.get()
    assert health.consecutive_failures >= 2 and health.last_error


def test_order_404_falls_through_a_failure_does_not(client, acme, reader, upstreams):
    first, second = upstreams("first"), upstreams("second")
    jar = write(second.root, JAR, b"from second")
    registry = registry_with(acme, remote(acme, first), remote(acme, second))
    response = get(client, registry, JAR, reader)
    assert body(response) == jar and response["X-Packhouse-Upstream"] == str(Upstream.objects.get(url=second.url).pk)
    assert NegativeEntry.objects.filter(upstream__url=first.url).count() == 1
    asked_first = len(first.requests())
    assert get(client, registry, JAR, reader).status_code == 200
    assert len(first.requests()) == asked_first  # the negative entry spares the first upstream

    other = "com/example/lib/2.0/lib-2.0.jar"
    write(second.root, other, b"2.0")
    first.stop()
    assert get(client, registry, other, reader).status_code == 503  # a failing position 1 blocks position 2


def test_a_local_name_hides_every_remote_version(client, acme, upstreams):
    reader = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.REPORTER)).plaintext)
    guest = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.GUEST)).plaintext)
    central = upstreams()
    write(central.root, "com/acme/lib/1.0/lib-1.0.jar", b"remote 1.0")
    write(central.root, "com/acme/lib/99.0/lib-99.0.jar", b"remote 99.0")
    project = ProjectFactory(group=acme)
    publisher = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext)
    owner = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER)).plaintext)
    local = Upstream.objects.create(group=acme, format="maven", kind="local", name="ours", local_project=project)
    registry = registry_with(acme, remote(acme, central), local)
    put = client.put(
        f"/api/v4/projects/{project.pk}/packages/maven/com/acme/lib/1.0/lib-1.0.jar",
        data=b"local 1.0",
        content_type="application/octet-stream",
        **publisher,
    )
    assert put.status_code in (200, 201)
    assert NameClaim.objects.filter(upstream=local, name="com/acme/lib").exists()

    mine = get(client, registry, "com/acme/lib/1.0/lib-1.0.jar", reader)
    assert body(mine) == b"local 1.0" and mine["X-Packhouse-Upstream"] == f"local-{local.pk}"
    # A Guest may use the registry but not pull the private project: the claimed name is a 404
    # for them, never the remote copy.
    assert get(client, registry, "com/acme/lib/1.0/lib-1.0.jar", guest).status_code == 404
    theirs = get(client, registry, "com/acme/lib/99.0/lib-99.0.jar", reader)
    assert theirs.status_code == 404 and "claimed by local upstream ours" in theirs.json()["message"]
    version = PackageVersion.objects.get(package__project=project)  # what the REST API calls a package
    deleted = client.delete(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **owner)
    assert deleted.status_code == 204, deleted.content  # the claim outlives the package
    assert get(client, registry, "com/acme/lib/1.0/lib-1.0.jar", reader).status_code == 404
    assert not any("com/acme" in line for line in central.requests())


def test_client_endpoint_refusals(client, acme, reader, upstreams):
    central = upstreams()
    write(central.root, JAR, b"jar")
    registry = registry_with(acme, remote(acme, central))
    anonymous = get(client, registry, JAR, {})
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Basic realm="GitLab Virtual Registry"'
    stranger = auth_headers(AccessTokenFactory(user=UserFactory()).plaintext)
    assert get(client, registry, JAR, stranger).status_code == 404
    assert get(client, registry, JAR, {"HTTP_PRIVATE_TOKEN": "glpat-nope"}).status_code == 401
    put = client.put(f"/api/v4/virtual_registries/packages/maven/{registry.pk}/{JAR}", data=b"x", **reader)
    assert put.status_code == 405 and put["Allow"] == "GET, HEAD"
    assert get(client, registry, "com/example/../lib/1.0/lib-1.0.jar", reader).status_code == 400
    assert get(client, registry, "com//lib/1.0/x.jar", reader).status_code == 400
    missing = f"/api/v4/virtual_registries/packages/maven/{registry.pk + 1000}/{JAR}"
    assert client.get(missing, **reader).status_code == 404
    assert not CacheEntry.objects.exists()


class _Slow(BaseHTTPRequestHandler):
    """Answers every GET after a second, counting the requests per path."""

    seen = None

    def do_GET(self):
        self.seen.append(self.path)
        time.sleep(1)
        if self.path.endswith(".sha1"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"slow jar"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.django_db(transaction=True)
def test_concurrent_misses_fetch_once(acme, reader):
    seen = []
    handler = type("Handler", (_Slow,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        upstream = Upstream.objects.create(
            group=acme, format="maven", kind="remote", name="slow", url=f"http://127.0.0.1:{server.server_address[1]}"
        )
        registry = registry_with(acme, upstream)
        results = []

        def fetch():
            results.append(get(Client(), registry, JAR, reader))
            connection.close()

        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.shutdown()
        server.server_close()
    assert [r.status_code for r in results] == [200] * 4
    assert sorted(r["X-Packhouse-Cache"] for r in results) == ["HIT", "HIT", "HIT", "MISS"]
    assert seen.count(f"/{JAR}") == 1


def test_upstream_rules_choose_which_upstream_may_answer(client, acme, upstreams):
    first, second = upstreams("first"), upstreams("second")
    write(first.root, JAR, b"from first")
    write(second.root, JAR, b"from second")
    write(second.root, "com/other/x/1.0/x-1.0.jar", b"other")
    one, two = remote(acme, first), remote(acme, second)
    registry = registry_with(acme, one, two)
    maintainer = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.MAINTAINER)).plaintext)
    rules = "/api/v4/virtual_registries/packages/maven/upstreams/{}/rules"

    def add(upstream, **rule):
        response = client.post(rules.format(upstream.pk), rule, content_type="application/json", **maintainer)
        assert response.status_code == 201, response.content
        return response.json()

    # The first upstream may not serve com.example's lib*: the second answers.
    add(one, rule_type="deny", pattern_type="wildcard", target="artifact_id", pattern="lib*")
    response = get(client, registry, JAR, maintainer)
    assert body(response) == b"from second"
    assert not any(JAR in line for line in first.requests())
    # The second only serves com.example, the first never com.other: denied everywhere (404,
    # nobody asked).
    add(two, rule_type="allow", pattern_type="wildcard", target="group_id", pattern="com.example")
    add(one, rule_type="deny", pattern_type="wildcard", target="group_id", pattern="com.oth*")
    denied = get(client, registry, "com/other/x/1.0/x-1.0.jar", maintainer)
    assert denied.status_code == 404 and "rules" in denied.json()["message"]
    assert not any("com/other" in line for line in first.requests() + second.requests())
    # Refusals.
    url = rules.format(one.pk)
    backreference = {"rule_type": "deny", "pattern_type": "regex", "target": "version", "pattern": r"(1)\1"}
    refused = client.post(url, backreference, content_type="application/json", **maintainer)
    assert refused.status_code == 400 and list(refused.json()["message"]) == ["pattern"]  # RE2 has none
    wrong = {"rule_type": "deny", "pattern_type": "wildcard", "target": "scope", "pattern": "x"}
    assert client.post(url, wrong, content_type="application/json", **maintainer).status_code == 400
    developer = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.DEVELOPER)).plaintext)
    assert client.get(url, **developer).status_code == 403
    listed = client.get(url, **maintainer).json()
    assert [rule["target"] for rule in listed] == ["artifact_id", "group_id"]
    for rule in listed:
        assert client.delete(f"{url}/{rule['id']}", **maintainer).status_code == 204
    assert UpstreamRule.objects.filter(upstream=one).count() == 0
