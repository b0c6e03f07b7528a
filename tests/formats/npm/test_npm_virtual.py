"""npm documents through a virtual registry (spec §2.2, §3.1), against a real Verdaccio upstream:
the abbreviated and full packuments cached apart, tarball URLs rewritten, dist-tags, refusals."""

import json

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualRegistry
from tests.clients.npm.test_npm_cli import Npm
from tests.factories import AccessTokenFactory, GroupFactory, member
from tests.helpers import auth_headers
from tests.upstreams import Verdaccio

pytestmark = pytest.mark.django_db
CORGI = "application/vnd.npm.install-v1+json"


@pytest.fixture(autouse=True)
def _local_upstreams_allowed(settings):
    settings.VR_ALLOW_HTTP = True
    settings.VR_ALLOW_LOCAL_NETWORK = True


@pytest.fixture
def verdaccio(tmp_path):
    directory = tmp_path / "verdaccio"
    directory.mkdir()
    server = Verdaccio(directory).start()
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "package.json").write_text(json.dumps({"name": "@up/pad", "version": "2.1.0", "description": "d"}))
    (package / "index.js").write_text("module.exports = 1;\n")
    (package / ".npmrc").write_text("\n".join(server.npmrc_lines()) + "\n")
    Npm(tmp_path, None).run(package, "publish")
    yield server
    server.stop()


@pytest.fixture
def registry(verdaccio):
    group = GroupFactory(path="acme")
    registry = VirtualRegistry.objects.create(group=group, format="npm", name="npm")
    upstream = Upstream.objects.create(group=group, format="npm", kind="remote", name="v", url=verdaccio.url)
    RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=1)
    registry.reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
    return registry


def url(registry, path):
    return f"/api/v4/virtual_registries/packages/npm/{registry.pk}/{path}"


def test_packuments_are_cached_per_variant_and_rewritten(client, registry):
    abbreviated = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=CORGI, **registry.reader)
    assert abbreviated.status_code == 200 and abbreviated["Vary"] == "Accept"
    assert abbreviated["X-Packhouse-Cache"] == "MISS"
    document = abbreviated.json()
    tarball = document["versions"]["2.1.0"]["dist"]["tarball"]
    assert tarball == f"http://testserver{url(registry, '@up/pad/-/pad-2.1.0.tgz')}"
    assert document["dist-tags"] == {"latest": "2.1.0"}

    full = client.get(url(registry, "@up/pad"), HTTP_ACCEPT="application/json", **registry.reader)
    assert full.status_code == 200 and full.json()["versions"]["2.1.0"]["dist"]["tarball"] == tarball
    assert full.json()["versions"]["2.1.0"]["description"] == "d"
    keys = sorted(CacheEntry.objects.values_list("relative_path", flat=True))
    assert keys == ["/@up/pad", "/@up/pad#abbreviated"]
    assert client.get(url(registry, "@up%2Fpad"), HTTP_ACCEPT=CORGI, **registry.reader)["X-Packhouse-Cache"] == "HIT"

    tags = client.get(url(registry, "-/package/@up%2fpad/dist-tags"), **registry.reader)
    assert tags.json() == {"latest": "2.1.0"}
    got = client.get(tarball.removeprefix("http://testserver"), **registry.reader)
    assert got.status_code == 200 and got["X-Packhouse-Cache"] == "MISS"
    assert CacheEntry.objects.get(relative_path="/@up/pad/-/pad-2.1.0.tgz").verified


def test_refusals_in_npm_shape(client, registry):
    missing = client.get(url(registry, "nothing-here"), **registry.reader)
    assert missing.status_code == 404 and set(missing.json()) == {"error", "message"}
    publish = client.put(url(registry, "@up%2fpad"), data=b"{}", content_type="application/json", **registry.reader)
    assert publish.status_code == 405 and publish["Allow"] == "GET, HEAD"
    assert client.get(url(registry, "-/ping"), **registry.reader).json() == {}
    assert client.get(url(registry, "@up%2fpad")).status_code == 401
    assert client.get(url(registry, "Bad Name"), **registry.reader).status_code == 400


def test_a_tarball_newer_than_the_cached_packument_refreshes_it(client, registry, verdaccio, tmp_path):
    first = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=CORGI, **registry.reader)
    assert list(first.json()["versions"]) == ["2.1.0"]
    package = tmp_path / "pkg"
    (package / "package.json").write_text(json.dumps({"name": "@up/pad", "version": "2.2.0"}))
    (tmp_path / "again").mkdir()
    Npm(tmp_path / "again", None).run(package, "publish")
    # A lockfile install asks for the tarball straight away; the packument is still fresh.
    newer = client.get(url(registry, "@up/pad/-/pad-2.2.0.tgz"), **registry.reader)
    assert newer.status_code == 200
    refreshed = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=CORGI, **registry.reader)
    assert sorted(refreshed.json()["versions"]) == ["2.1.0", "2.2.0"]


def test_the_groups_own_scope_is_never_taken_from_upstream(client, verdaccio):
    """A local upstream claims `@<top-level group>`: every remote name in that scope is hidden."""
    from registry.virtual import services

    group = GroupFactory(path="up")
    registry = VirtualRegistry.objects.create(group=group, format="npm", name="npm")
    remote = Upstream.objects.create(group=group, format="npm", kind="remote", name="v", url=verdaccio.url)
    RegistryUpstream.objects.create(registry=registry, upstream=remote, position=1)
    reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
    assert client.get(url(registry, "@up%2fpad"), **reader).status_code == 200  # no local upstream yet

    services.create_local_upstream(
        registry, {"name": "ours", "local_group_id": group.pk}, can_read_target=lambda target: None
    )
    hidden = client.get(url(registry, "@up%2fpad"), **reader)
    assert hidden.status_code == 404 and "claimed by local upstream ours" in hidden.json()["message"]
