"""The real NuGet.exe (v3, on mono) restoring through a NuGet virtual registry (spec §2.4, §3, §4.2).

The remote upstream is a second live Packhouse process serving another group's private NuGet
feed, reached with a deploy token stored as the upstream's username and password (encrypted at
rest); the local upstream is the group's own project. Then the upstream process is stopped and a
fresh client (new HOME, no cache) still installs from Packhouse's cache.
"""

import json
import urllib.request

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, Upstream
from tests.clients.nuget import test_nuget_exe
from tests.clients.nuget.test_nuget_exe import Client
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
nuget_exe = test_nuget_exe.nuget_exe  # the fixture installing NuGet.exe and mono when missing


@pytest.fixture
def upstream_server(blob_dir, spool_dir, tmp_path):
    """Another Packhouse process: the "public" feed."""
    server = start_live_server(blob_dir, spool_dir, tmp_path)
    yield server
    if server.process.poll() is None:
        stop_live_server(server)


def api(server, token, path, **body):
    request = urllib.request.Request(
        server.api(path),
        data=json.dumps(body).encode(),
        headers={"Private-Token": token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())


def test_nuget_exe_installs_through_a_virtual_registry(nuget_exe, virtual_server, upstream_server, tmp_path):
    # Upstream: a private feed of another group, with a public library and the group's id at 99.0.0.
    feed = ProjectFactory(group=GroupFactory(path="gallery"), path="feed")
    publisher = UserFactory(username="publisher")
    MembershipFactory(user=publisher, project=feed, access_level=AccessLevel.DEVELOPER)
    feed_token = AccessTokenFactory(user=publisher).plaintext
    feed_url = upstream_server.api(f"projects/{feed.pk}/packages/nuget/index.json")
    pusher = Client(nuget_exe, tmp_path / "pusher")
    pusher.add_source("gallery", feed_url, "publisher", feed_token)
    pusher.push(pusher.pack("Public.Lib", "1.0.0"), "gallery")
    pusher.push(pusher.pack("Acme.Tool", "99.0.0"), "gallery")

    # Local: the group's own Acme.Tool 1.0.0.
    group = GroupFactory(path="dotnet")
    project = ProjectFactory(group=group, path="libs")
    user = UserFactory(username="dev")
    MembershipFactory(user=user, group=group, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=user).plaintext
    local_client = Client(nuget_exe, tmp_path / "local")
    local_client.add_source(
        "libs", virtual_server.api(f"projects/{project.pk}/packages/nuget/index.json"), "dev", token
    )
    local_client.push(local_client.pack("Acme.Tool", "1.0.0"), "libs")

    # The registry, set up through the REST API; the upstream reads the feed with a deploy token.
    reader = DeployTokenFactory(project=feed, scopes=["read_package_registry"])
    registry = api(virtual_server, token, f"groups/{group.pk}/-/virtual_registries/packages/nuget/registries", name="n")
    base = f"virtual_registries/packages/nuget/registries/{registry['id']}"
    remote = api(
        virtual_server, token, f"{base}/upstreams", url=feed_url, username=reader.username, password=reader.plaintext
    )
    assert remote["has_credentials"] and reader.plaintext not in json.dumps(remote)
    api(virtual_server, token, f"{base}/local/upstreams", name="ours", local_project_id=project.pk)
    source = virtual_server.api(f"virtual_registries/packages/nuget/{registry['id']}/index.json")

    client = Client(nuget_exe, tmp_path / "consumer")
    client.add_source("virtual", source, "dev", token)
    code, output, installed = client.install("Public.Lib", "1.0.0", "virtual")
    assert code == 0 and installed.read_text() == "hello from packhouse\n", output
    code, output, installed = client.install("Acme.Tool", "1.0.0", "virtual")
    assert code == 0 and installed.is_file(), output
    code, output, _ = client.install("Acme.Tool", "99.0.0", "virtual", check=False)
    assert code != 0  # the group's own id: the upstream's 99.0.0 never resolves
    upstream = Upstream.objects.get(pk=remote["id"])
    cached = set(CacheEntry.objects.filter(upstream=upstream).values_list("relative_path", flat=True))
    assert "/flat/public.lib/1.0.0/public.lib.1.0.0.nupkg" in cached
    assert not any("acme.tool" in path for path in cached)

    # The registration NuGet read: every URL in it points at the virtual registry.
    request = urllib.request.Request(source.replace("index.json", "metadata/public.lib/index.json"))
    request.add_header("Private-Token", token)
    with urllib.request.urlopen(request, timeout=30) as response:
        registration = json.loads(response.read())
    leaf = registration["items"][0]["items"][0]
    prefix = source.removesuffix("/index.json")
    assert registration["@id"] == f"{prefix}/metadata/public.lib/index.json"
    assert leaf["packageContent"] == f"{prefix}/download/public.lib/1.0.0/public.lib.1.0.0.nupkg"
    assert leaf["catalogEntry"]["packageContent"] == leaf["packageContent"]

    stop_live_server(upstream_server)
    offline = Client(nuget_exe, tmp_path / "offline")
    offline.add_source("virtual", source, "dev", token)
    code, output, installed = offline.install("Public.Lib", "1.0.0", "virtual")
    assert code == 0 and installed.read_text() == "hello from packhouse\n", output
