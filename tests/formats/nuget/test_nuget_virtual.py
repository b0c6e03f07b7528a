"""NuGet v3 through a virtual registry (spec §2.4, §4.2, §4.3, §5.4) against real upstream servers:

- another Packhouse process serving a project's NuGet feed (its registrations carry each
  version's packageHash, as nuget.org's catalog does): a .nupkg is verified against it before it is
  cached, and one whose stored bytes changed behind the upstream's back is 502, nothing cached;
- a static v3 feed laid out as nuget.org's (python's http.server over a directory): registration
  pages not inlined, catalog leaves holding packageHash; the pages are fetched and inlined, the
  leaves checked, a page on another host refused.
"""

import base64
import hashlib
import json

import pytest

from accounts.roles import AccessLevel
from registry import secrets
from registry.models import (
    Blob,
    CacheEntry,
    OriginPin,
    PackageVersion,
    RegistryUpstream,
    Upstream,
    UpstreamRule,
    VirtualRegistry,
)
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, DeployTokenFactory, GroupFactory, ProjectFactory, member
from tests.formats.nuget.nupkg import multipart, nupkg
from tests.helpers import auth_headers
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_upstreams_allowed")]


@pytest.fixture
def upstream_server(blob_dir, spool_dir, tmp_path):
    """Another Packhouse process: the upstream feed."""
    server = start_live_server(blob_dir, spool_dir, tmp_path)
    yield server
    stop_live_server(server)


@pytest.fixture
def dotnet():
    return GroupFactory(path="dotnet")


@pytest.fixture
def reader(dotnet):
    return auth_headers(AccessTokenFactory(user=member(dotnet, AccessLevel.REPORTER)).plaintext)


def publish(client, project, package_id, version):
    publisher = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext)
    data = nupkg(package_id, version)
    body, content_type = multipart(data)
    url = f"/api/v4/projects/{project.pk}/packages/nuget/"
    response = client.put(url, body, content_type=content_type, **publisher)
    assert response.status_code == 201, response.content
    return data


def registry_with(group, *upstreams):
    registry = VirtualRegistry.objects.create(group=group, format="nuget", name=f"r{VirtualRegistry.objects.count()}")
    for position, upstream in enumerate(upstreams, start=1):
        RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=position)
    return registry


def remote(group, url, name="feed"):
    return Upstream.objects.create(group=group, format="nuget", kind="remote", name=name, url=url)


def get(client, registry, path, headers):
    return client.get(f"/api/v4/virtual_registries/packages/nuget/{registry.pk}/{path}", **headers)


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_nupkg_is_checked_against_the_upstreams_package_hash(client, dotnet, reader, upstream_server, blob_dir):
    feed = ProjectFactory(group=GroupFactory(path="gallery"), path="feed")
    good = publish(client, feed, "Public.Lib", "1.0.0")
    tampered = publish(client, feed, "Tampered.Lib", "1.0.0")
    upstream = remote(dotnet, upstream_server.api(f"projects/{feed.pk}/packages/nuget/index.json"))
    deploy = DeployTokenFactory(project=feed, scopes=["read_package_registry"])
    upstream.username, upstream.password_encrypted = deploy.username, secrets.encrypt(deploy.plaintext)
    upstream.save()
    registry = registry_with(dotnet, upstream)

    # The upstream's registration says which bytes each version has.
    index = get(client, registry, "metadata/public.lib/index.json", reader).json()
    entry = index["items"][0]["items"][0]["catalogEntry"]
    assert entry["packageHashAlgorithm"] == "SHA512"
    assert entry["packageHash"] == base64.b64encode(hashlib.sha512(good).digest()).decode()

    served = get(client, registry, "download/public.lib/1.0.0/public.lib.1.0.0.nupkg", reader)
    assert served.status_code == 200 and body(served) == good
    cached = CacheEntry.objects.get(relative_path="/flat/public.lib/1.0.0/public.lib.1.0.0.nupkg")
    assert cached.verified
    assert OriginPin.objects.get(registry=registry).unit == "public.lib/1.0.0"

    # The upstream's stored package changes behind its back: the bytes no longer match its hash.
    blob = Blob.objects.get(sha256=hashlib.sha256(tampered).hexdigest())
    changed = tampered[:-8] + b"tampered"
    (blob_dir / blob.key).write_bytes(changed)
    refused = get(client, registry, "download/tampered.lib/1.0.0/tampered.lib.1.0.0.nupkg", reader)
    assert refused.status_code == 502
    assert refused.json()["message"] == "502 Upstream integrity check failed"
    assert not CacheEntry.objects.filter(relative_path__contains="tampered.lib.1.0.0.nupkg").exists()
    assert not Blob.objects.filter(sha256=hashlib.sha256(changed).hexdigest()).exists()


# --- a static feed shaped as nuget.org's --------------------------------------------------------


def b64_sha512(data):
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def static_feed(root, url, foreign_url):
    """Paged.Lib 1.0.0 and 2.0.0 (one page each, not inlined; 2.0.0's catalog leaf names other
    bytes than its .nupkg) and Foreign.Lib (its page on another host). Returns the packages."""
    packages = {version: nupkg("Paged.Lib", version) for version in ("1.0.0", "2.0.0")}
    files = {
        "index.json": {
            "version": "3.0.0",
            "resources": [
                {"@id": f"{url}/flat/", "@type": "PackageBaseAddress/3.0.0"},
                {"@id": f"{url}/reg/", "@type": "RegistrationsBaseUrl/3.6.0"},
                {"@id": f"{url}/catalog/index.json", "@type": "Catalog/3.0.0"},
            ],
        },
        "reg/paged.lib/index.json": {
            "count": 2,
            "items": [
                {"@id": f"{url}/reg/paged.lib/page/{v}/{v}.json", "lower": v, "upper": v, "count": 1}
                for v in ("1.0.0", "2.0.0")
            ],
        },
        "reg/foreign.lib/index.json": {
            "count": 1,
            "items": [{"@id": f"{foreign_url}/reg/foreign.lib/page.json", "lower": "1.0.0", "upper": "1.0.0"}],
        },
        "flat/paged.lib/index.json": {"versions": ["1.0.0", "2.0.0"]},
    }
    for version, data in packages.items():
        files[f"reg/paged.lib/page/{version}/{version}.json"] = {
            "count": 1,
            "lower": version,
            "upper": version,
            "items": [
                {
                    "@id": f"{url}/reg/paged.lib/{version}.json",
                    "packageContent": f"{url}/flat/paged.lib/{version}/paged.lib.{version}.nupkg",
                    "catalogEntry": {
                        "@id": f"{url}/catalog/data/paged.lib.{version}.json",
                        "id": "Paged.Lib",
                        "version": version,
                        "listed": True,
                    },
                }
            ],
        }
        promised = data if version == "1.0.0" else b"other bytes"
        files[f"catalog/data/paged.lib.{version}.json"] = {
            "id": "Paged.Lib",
            "version": version,
            "packageHash": b64_sha512(promised),
            "packageHashAlgorithm": "SHA512",
        }
        nupkg_path = root / f"flat/paged.lib/{version}/paged.lib.{version}.nupkg"
        nupkg_path.parent.mkdir(parents=True, exist_ok=True)
        nupkg_path.write_bytes(data)
    for relative, document in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
    return packages


@pytest.fixture
def static_upstream(tmp_path):
    root = tmp_path / "feed"
    root.mkdir()
    server = StaticUpstream(root, log_path=tmp_path / "feed.log")
    server.root = root
    server.packages = static_feed(root, server.url, server.url.replace("127.0.0.1", "127.0.0.2"))
    server.start()
    yield server
    server.stop()


def test_registration_pages_are_fetched_inlined_and_leaves_checked(client, dotnet, reader, static_upstream):
    upstream = remote(dotnet, f"{static_upstream.url}/index.json")
    registry = registry_with(dotnet, upstream)
    prefix = f"http://testserver/api/v4/virtual_registries/packages/nuget/{registry.pk}"

    index = get(client, registry, "metadata/paged.lib/index.json", reader)
    assert index.status_code == 200, index.content
    document = index.json()
    assert document["@id"] == f"{prefix}/metadata/paged.lib/index.json"
    leaves = [leaf for page in document["items"] for leaf in page["items"]]
    assert [leaf["catalogEntry"]["version"] for leaf in leaves] == ["1.0.0", "2.0.0"]
    assert leaves[0]["packageContent"] == f"{prefix}/download/paged.lib/1.0.0/paged.lib.1.0.0.nupkg"
    assert all(page["@id"].startswith(f"{prefix}/metadata/paged.lib/index.json#page/") for page in document["items"])
    leaf = get(client, registry, "metadata/paged.lib/2.0.0.json", reader)
    assert leaf.status_code == 200 and leaf.json()["catalogEntry"]["version"] == "2.0.0"
    pages = CacheEntry.objects.filter(upstream=upstream, relative_path__startswith="/registration/paged.lib/page-")
    assert pages.count() == 2  # cached like the index
    asked = len(static_upstream.requests())
    assert get(client, registry, "metadata/paged.lib/index.json", reader).status_code == 200
    assert len(static_upstream.requests()) == asked

    # 1.0.0 matches its catalog leaf's packageHash; 2.0.0 does not.
    good = get(client, registry, "download/paged.lib/1.0.0/paged.lib.1.0.0.nupkg", reader)
    assert good.status_code == 200 and body(good) == static_upstream.packages["1.0.0"]
    assert CacheEntry.objects.get(relative_path="/flat/paged.lib/1.0.0/paged.lib.1.0.0.nupkg").verified
    assert any("/catalog/data/paged.lib.1.0.0.json" in line for line in static_upstream.requests())
    bad = get(client, registry, "download/paged.lib/2.0.0/paged.lib.2.0.0.nupkg", reader)
    assert bad.status_code == 502 and bad.json()["message"] == "502 Upstream integrity check failed"
    assert not CacheEntry.objects.filter(relative_path="/flat/paged.lib/2.0.0/paged.lib.2.0.0.nupkg").exists()

    # A page on another host is never fetched.
    foreign = get(client, registry, "metadata/foreign.lib/index.json", reader)
    assert foreign.status_code == 502
    assert not any("foreign.lib/page" in line for line in static_upstream.requests())


# --- search and claimed prefixes ------------------------------------------------------------------


def test_search_merges_local_and_remote_results(client, dotnet, reader, upstream_server):
    feed = ProjectFactory(group=GroupFactory(path="gallery"), path="feed")
    for package_id, version in (
        ("Public.Lib", "1.0.0"),
        ("Acme.Tool", "99.0.0"),  # the group's own id: hidden by the claim
        ("Acme.Extra", "1.0.0"),  # under the group's prefix: hidden by the prefix claim
        ("Denied.Lib", "1.0.0"),  # denied by the upstream's rule
    ):
        publish(client, feed, package_id, version)
    upstream = remote(dotnet, upstream_server.api(f"projects/{feed.pk}/packages/nuget/index.json"))
    deploy = DeployTokenFactory(project=feed, scopes=["read_package_registry"])
    upstream.username, upstream.password_encrypted = deploy.username, secrets.encrypt(deploy.plaintext)
    upstream.save()
    deny = {"rule_type": "deny", "pattern_type": "wildcard", "target": "id", "pattern": "denied.*"}
    UpstreamRule.objects.create(upstream=upstream, **deny)

    project = ProjectFactory(group=dotnet, path="libs")
    maintainer = auth_headers(AccessTokenFactory(user=member(dotnet, AccessLevel.MAINTAINER)).plaintext)
    registry = registry_with(dotnet)
    created = client.post(
        f"/api/v4/virtual_registries/packages/nuget/registries/{registry.pk}/local/upstreams",
        {"name": "ours", "local_project_id": project.pk, "claimed_prefixes": ["Acme.*"]},
        content_type="application/json",
        **maintainer,
    )
    assert created.status_code == 201, created.content
    assert created.json()["claimed_prefixes"] == ["acme.*"]
    publish(client, project, "Acme.Tool", "1.0.0")
    publish(client, project, "Local.Only", "2.0.0")
    publish(client, project, "Hidden.Local", "1.0.0")
    PackageVersion.objects.filter(package__name="Hidden.Local").update(status="hidden")  # unlisted
    RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=2)  # after the local one
    prefix = f"http://testserver/api/v4/virtual_registries/packages/nuget/{registry.pk}"

    found = get(client, registry, "query?q=&take=50", reader)
    assert found.status_code == 200 and "X-Packhouse-Search-Incomplete" not in found
    data = found.json()["data"]
    assert [item["id"] for item in data] == ["Acme.Tool", "Local.Only", "Public.Lib"]
    assert found.json()["totalHits"] == 3
    assert [v["version"] for v in data[0]["versions"]] == ["1.0.0"]  # never the remote 99.0.0
    public = data[2]
    assert public["registration"] == public["@id"] == f"{prefix}/metadata/public.lib/index.json"
    assert public["versions"][0]["@id"] == f"{prefix}/metadata/public.lib/1.0.0.json"
    assert data[1]["registration"] == f"{prefix}/metadata/local.only/index.json"
    page = get(client, registry, "query?q=&skip=2&take=1", reader).json()
    assert [item["id"] for item in page["data"]] == ["Public.Lib"]
    assert [item["id"] for item in get(client, registry, "query?q=public", reader).json()["data"]] == ["Public.Lib"]

    # The prefix claim also hides the remote id from resolution.
    hidden = get(client, registry, "metadata/acme.extra/index.json", reader)
    assert hidden.status_code == 404 and "claimed by local upstream ours" in hidden.json()["message"]
    # Dropping a prefix releases its claim: Owners only.
    url = f"/api/v4/virtual_registries/packages/nuget/local/upstreams/{created.json()['id']}"
    dropping = {"claimed_prefixes": []}
    assert client.patch(url, dropping, content_type="application/json", **maintainer).status_code == 403
    owner = auth_headers(AccessTokenFactory(user=member(dotnet, AccessLevel.OWNER)).plaintext)
    changed = client.patch(url, dropping, content_type="application/json", **owner)
    assert changed.status_code == 200 and changed.json()["claimed_prefixes"] == []
    bad = client.patch(url, {"claimed_prefixes": ["Acme"]}, content_type="application/json", **owner)
    assert bad.status_code == 400 and "claimed_prefixes" in bad.json()["message"]

    # The remote down: local results, and a header saying the rest is missing.
    stop_live_server(upstream_server)
    down = get(client, registry, "query?q=lib&take=50", reader)
    assert down.status_code == 200 and down["X-Packhouse-Search-Incomplete"] == "upstream-error"
    assert [item["id"] for item in down.json()["data"]] == []
    down = get(client, registry, "query?q=local&take=50", reader)
    assert [item["id"] for item in down.json()["data"]] == ["Local.Only"]
