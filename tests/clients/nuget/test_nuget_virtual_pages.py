"""NuGet.exe 5.8 (v3, on mono) installing through a NuGet virtual registry whose upstream does not
inline its registration pages and keeps packageHash in catalog leaves, as nuget.org does (spec
§2.4, §5.3, §5.4).

The upstream is a static v3 feed served by python's http.server (tests.formats.nuget's
`static_feed`: Paged.Lib 1.0.0 and 2.0.0 on pages of their own; 2.0.0's catalog leaf promises
other bytes than its .nupkg). NuGet.exe installs 1.0.0, whose page Packhouse fetched and inlined,
and fails on 2.0.0, which Packhouse refuses (502) and never caches.
"""

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualRegistry
from tests.clients.nuget import test_nuget_exe
from tests.clients.nuget.test_nuget_exe import Client
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, UserFactory
from tests.formats.nuget.test_nuget_virtual import static_feed
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]
nuget_exe = test_nuget_exe.nuget_exe  # the fixture installing NuGet.exe and mono when missing


def test_nuget_exe_installs_from_an_upstream_with_pages_not_inlined(nuget_exe, virtual_server, tmp_path):
    root = tmp_path / "feed"
    root.mkdir()
    feed = StaticUpstream(root, log_path=tmp_path / "feed.log")
    packages = static_feed(root, feed.url, feed.url)
    feed.start()
    try:
        group = GroupFactory(path="dotnet")
        user = UserFactory(username="dev")
        MembershipFactory(user=user, group=group, access_level=AccessLevel.REPORTER)
        token = AccessTokenFactory(user=user).plaintext
        registry = VirtualRegistry.objects.create(group=group, format="nuget", name="n")
        upstream = Upstream.objects.create(
            group=group, format="nuget", kind="remote", name="static", url=f"{feed.url}/index.json"
        )
        RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=1)
        source = virtual_server.api(f"virtual_registries/packages/nuget/{registry.pk}/index.json")

        client = Client(nuget_exe, tmp_path / "consumer")
        client.add_source("virtual", source, "dev", token)
        code, output, _ = client.install("Paged.Lib", "1.0.0", "virtual")
        assert code == 0, output
        installed = tmp_path / "consumer/out/Paged.Lib.1.0.0/Paged.Lib.1.0.0.nupkg"
        assert installed.read_bytes() == packages["1.0.0"]
        assert any("/reg/paged.lib/page/1.0.0/1.0.0.json" in line for line in feed.requests())
        assert CacheEntry.objects.get(relative_path="/flat/paged.lib/1.0.0/paged.lib.1.0.0.nupkg").verified

        code, output, _ = client.install("Paged.Lib", "2.0.0", "virtual", check=False)
        assert code != 0, output
        assert not (tmp_path / "consumer/out/Paged.Lib.2.0.0").exists()
        assert not CacheEntry.objects.filter(relative_path__endswith="paged.lib.2.0.0.nupkg").exists()
    finally:
        feed.stop()
