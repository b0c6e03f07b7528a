"""Issue 16: what a virtual registry's answer costs when it is not remembered (the Django path of a
warm install: the caller, the registry and the cache already known, the answer not replayed).

Every request goes through Django only (the test client: nothing is replayed before Django). Each
answer is asked twice to warm everything up (a remote upstream's MISS stores it, which changes the
registry's epoch; the next request remembers under the new one), then once more, counting its SQL
queries: a local and a remote npm packument and tarball, a local and a remote PyPI simple page and
file. The counts are those of the process's warm memory (registry.access_cache: the caller, the
registry and its authorization; registry.virtual.resolver: the upstreams, rules, claims, a local
upstream's projects and files) and must not grow back.
"""

import hashlib
import json

import pytest
from django.core import signals
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AccessLevel
from registry.models import RegistryUpstream, Upstream, VirtualRegistry
from registry.virtual import health, services
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.formats.npm.npmdocs import publish_document
from tests.helpers import auth_headers
from tests.payloads import twine_form
from tests.upstreams import AdvisoryUpstream, static_pypi_sdist

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
CORGI = "application/vnd.npm.install-v1+json"
PYPI_JSON = "application/vnd.pypi.simple.v1+json"
PAYLOAD = b"an sdist's bytes " * 1000


@pytest.fixture
def npm_upstream(tmp_path):
    server = AdvisoryUpstream(tmp_path / "npm")
    server.files.mkdir(parents=True)
    server.publish("@partner/demo", "1.0.0", {"index.js": "module.exports = 1;\n"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pypi_upstream(tmp_path):
    started = static_pypi_sdist(tmp_path / "pypi", PAYLOAD)
    yield started
    started.stop()


@pytest.fixture
def world(client, npm_upstream, pypi_upstream):
    """A group with a private project holding an npm and a PyPI package; per format a registry
    whose one upstream is that project (local) and one whose one upstream is remote; a Reporter's
    token (its first use recorded) and the Maintainer's that published."""
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="web", visibility="private")
    maintainer = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER)).plaintext, "bearer")
    npm_url = f"/api/v4/projects/{project.pk}/packages/npm/@acme%2fwidget"
    published = client.put(
        npm_url,
        data=json.dumps(publish_document("@acme/widget", "1.0.0")),
        content_type="application/json",
        **maintainer,
    )
    assert published.status_code == 200, published.content
    body, content_type = twine_form("widget", "1.0")
    published = client.post(
        f"/api/v4/projects/{project.pk}/packages/pypi", data=body, content_type=content_type, **maintainer
    )
    assert published.status_code == 201, published.content
    registries = {}
    for fmt, url in (("npm", npm_upstream.url), ("pypi", f"{pypi_upstream.url}/simple")):
        local = VirtualRegistry.objects.create(group=group, format=fmt, name=f"{fmt}-local")
        services.create_local_upstream(
            local, {"name": f"{fmt}-ours", "local_project_id": project.pk}, can_read_target=lambda target: None
        )
        remote = VirtualRegistry.objects.create(group=group, format=fmt, name=f"{fmt}-remote")
        upstream = Upstream.objects.create(group=group, format=fmt, kind="remote", name=f"{fmt}-up", url=url)
        RegistryUpstream.objects.create(registry=remote, upstream=upstream, position=1)
        registries[fmt] = (local, remote)
    headers = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.REPORTER)).plaintext, "bearer")
    return registries, headers


def base(registry):
    return f"/api/v4/virtual_registries/packages/{registry.format}/{registry.pk}"


def wheel_path(client, local, headers):
    page = client.get(f"{base(local)}/simple/widget/", HTTP_ACCEPT=PYPI_JSON, **headers)
    assert page.status_code == 200, page.content
    (found,) = page.json()["files"]
    return found["url"].split(f"/{local.pk}/", 1)[1]


# What each answer costs through Django once warm: nothing but the remote cache entries it serves
# (and, for a released file, the entry of the metadata that must still list it). Before the resolver
# and the view remembered anything (issue 16), the same answers cost 7 to 9 queries each: the
# token, the registry, the caller's level twice, the upstreams, their rules or the name's claims,
# the local upstream's projects and file, and a second look at the metadata's entry.
EXPECTED = {
    "npm local packument": 0,
    "npm local tarball": 0,
    "npm remote packument": 1,
    "npm remote tarball": 2,
    "pypi local simple page": 0,
    "pypi local file": 0,
    "pypi remote simple page": 1,
    "pypi remote file": 2,
}


def answers(client, world):
    """(name, path, Accept) of every measured answer."""
    registries, headers = world
    npm_local, npm_remote = registries["npm"]
    pypi_local, pypi_remote = registries["pypi"]
    sdist = hashlib.sha256(PAYLOAD).hexdigest()
    return [
        ("npm local packument", f"{base(npm_local)}/@acme%2fwidget", CORGI),
        ("npm local tarball", f"{base(npm_local)}/@acme/widget/-/widget-1.0.0.tgz", "*/*"),
        ("npm remote packument", f"{base(npm_remote)}/@partner%2fdemo", CORGI),
        ("npm remote tarball", f"{base(npm_remote)}/@partner/demo/-/demo-1.0.0.tgz", "*/*"),
        ("pypi local simple page", f"{base(pypi_local)}/simple/widget/", "text/html"),
        ("pypi local file", f"{base(pypi_local)}/{wheel_path(client, pypi_local, headers)}", "*/*"),
        ("pypi remote simple page", f"{base(pypi_remote)}/simple/demo/", "text/html"),
        ("pypi remote file", f"{base(pypi_remote)}/files/demo/{sdist}/demo-1.0.tar.gz", "*/*"),
    ]


def ask(client, path, accept, headers):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, HTTP_ACCEPT=accept, **headers)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        signals.request_finished.disconnect(close_old_connections)  # keep the test's transaction
        try:
            response.close()
        finally:
            signals.request_finished.connect(close_old_connections)
    assert response.status_code == 200, (path, response.status_code, body[:300])
    return response, body, [query["sql"] for query in queries.captured_queries]


def test_warm_virtual_answers_cost_what_their_cache_entries_do(client, world):
    registries, headers = world
    costs, bodies = {}, {}
    for name, path, accept in answers(client, world):
        _, first, _ = ask(client, path, accept, headers)  # a remote MISS stored (a new registry epoch)
        ask(client, path, accept, headers)  # the first HIT under that epoch: remembered from here on
        response, again, queries = ask(client, path, accept, headers)
        assert response["X-Packhouse-Cache"] == "HIT" and again == first and again
        costs[name], bodies[name] = queries, again
    assert {name: len(queries) for name, queries in costs.items()} == EXPECTED, "\n".join(
        f"{name}: {sql}" for name, queries in costs.items() for sql in queries
    )
    assert b"widget-1.0.0.tgz" in bodies["npm local packument"] and b"demo-1.0.0.tgz" in bodies["npm remote packument"]
    assert bodies["pypi remote file"] == PAYLOAD


def test_a_remembered_upstream_is_not_asked_while_another_process_found_it_unhealthy(client, world):
    """The resolver remembers a registry's upstreams, but not their health, which changes without
    a new epoch: an upstream another process's breaker opened is not asked for a file it does not
    have cached (503), however recently this process remembered it healthy."""
    registries, headers = world
    _, remote = registries["npm"]
    packument = f"{base(remote)}/@partner%2fdemo"
    for _ in range(3):  # MISS, then HIT twice: the upstream is remembered as healthy
        assert client.get(packument, HTTP_ACCEPT=CORGI, **headers).status_code == 200
    upstream = Upstream.objects.get(registry_upstreams__registry=remote)
    for _ in range(health.FAILURES_BEFORE_UNHEALTHY):
        health.failed(Upstream.objects.get(pk=upstream.pk), "HTTP 503")  # as another worker records it

    tarball = client.get(f"{base(remote)}/@partner/demo/-/demo-1.0.0.tgz", **headers)

    assert tarball.status_code == 503
    assert client.get(packument, HTTP_ACCEPT=CORGI, **headers).status_code == 200  # its cached copy still served
