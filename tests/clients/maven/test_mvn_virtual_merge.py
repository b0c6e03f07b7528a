"""The real `mvn` resolving a version range through a Maven virtual registry (spec §4.3).

Three real upstreams (python's http.server on 127.0.0.1): Debian's /usr/share/maven-repo as
"Maven Central" for the plugins, and two repositories that each hold one version of
com.acme:widget with their own maven-metadata.xml ("legacy" 1.0, "releases" 2.0). The consumer
depends on `[1.0,3.0)`. With the registry's default (the first upstream's metadata) mvn sees only
1.0; once `merge_maven_metadata` is switched on through the REST API it sees both and takes 2.0,
whose POM and jar come from the one upstream that has them (pinned), checksums validating.
"""

import hashlib
import io
import json
import urllib.request
import zipfile

import pytest

from accounts.roles import AccessLevel
from registry.models import OriginPin, RegistryUpstream, Upstream, VirtualRegistry
from tests.clients.maven import test_mvn, test_mvn_virtual
from tests.clients.maven.test_mvn import mvn
from tests.clients.maven.test_mvn_virtual import write_settings
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, UserFactory
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]
maven = test_mvn.maven  # the fixture installing Maven when missing
central = test_mvn_virtual.central  # Debian's repository served as "Central"
WIDGET = "com/acme/widget"


def jar_bytes(version):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        entry = zipfile.ZipInfo("META-INF/MANIFEST.MF", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(entry, f"Manifest-Version: 1.0\nImplementation-Version: {version}\n")
    return buffer.getvalue()


def publish(root, version, stamp):
    """A Maven repository holding com.acme:widget:`version`, its metadata listing only it."""
    files = {
        f"{WIDGET}/{version}/widget-{version}.pom": (
            '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            f"<groupId>com.acme</groupId><artifactId>widget</artifactId><version>{version}</version></project>"
        ).encode(),
        f"{WIDGET}/{version}/widget-{version}.jar": jar_bytes(version),
        f"{WIDGET}/maven-metadata.xml": (
            "<metadata><groupId>com.acme</groupId><artifactId>widget</artifactId><versioning>"
            f"<latest>{version}</latest><release>{version}</release>"
            f"<versions><version>{version}</version></versions><lastUpdated>{stamp}</lastUpdated>"
            "</versioning></metadata>"
        ).encode(),
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        (root / f"{relative}.sha1").write_text(hashlib.sha1(data).hexdigest())


@pytest.fixture
def repositories(tmp_path):
    started = []
    for name, version, stamp in (("legacy", "1.0", "20200101000000"), ("releases", "2.0", "20250101000000")):
        root = tmp_path / name
        publish(root, version, stamp)
        started.append(StaticUpstream(root, log_path=tmp_path / f"{name}.log").start())
    yield started
    for server in started:
        server.stop()


def write_consumer(directory, plugins):
    pinned = "".join(
        f"<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-{name}-plugin</artifactId>"
        f"<version>{plugins[name]}</version></plugin>"
        for name in ("resources", "compiler")
    )
    (directory / "pom.xml").write_text(
        f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId><artifactId>consumer</artifactId><version>1.0</version>
  <properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <dependencies>
    <dependency><groupId>com.acme</groupId><artifactId>widget</artifactId><version>[1.0,3.0)</version></dependency>
  </dependencies>
  <build><plugins>{pinned}</plugins></build>
</project>
"""
    )


def build(tmp_path, label, plugins, registry_url, token):
    directory = tmp_path / label
    directory.mkdir()
    write_consumer(directory, plugins)
    code, output = mvn(directory, write_settings(directory, registry_url, token), "compile")
    return code, output, directory / "m2" / WIDGET


def test_mvn_resolves_a_range_over_merged_metadata(virtual_server, maven, central, repositories, tmp_path):
    legacy, releases = repositories
    group = GroupFactory(path="acme")
    user = UserFactory(username="builder")
    MembershipFactory(user=user, group=group, access_level=AccessLevel.MAINTAINER)
    token = AccessTokenFactory(user=user).plaintext
    registry = VirtualRegistry.objects.create(group=group, format="maven", name="everything")
    upstreams = [
        Upstream.objects.create(group=group, format="maven", kind="remote", name=name, url=server.url)
        for name, server in (("central", central), ("legacy", legacy), ("releases", releases))
    ]
    for position, upstream in enumerate(upstreams, start=1):
        RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=position)
    registry_url = virtual_server.api(f"virtual_registries/packages/maven/{registry.pk}")

    # GitLab's behaviour: the first metadata found (legacy's) decides the range.
    code, output, widget = build(tmp_path, "first-winner", maven, registry_url, token)
    assert code == 0, output
    assert (widget / "1.0/widget-1.0.jar").is_file() and not (widget / "2.0").exists()

    request = urllib.request.Request(
        virtual_server.api(f"virtual_registries/packages/maven/registries/{registry.pk}"),
        data=json.dumps({"merge_maven_metadata": True}).encode(),
        headers={"Private-Token": token, "Content-Type": "application/json"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["merge_maven_metadata"] is True

    code, output, widget = build(tmp_path, "merged", maven, registry_url, token)
    assert code == 0, output
    assert (widget / "2.0/widget-2.0.jar").read_bytes() == jar_bytes("2.0")
    assert not (widget / "1.0/widget-1.0.jar").exists()
    assert "checksum" not in output.lower()  # the merged metadata's .sha1 matched its bytes
    pin = OriginPin.objects.get(registry=registry, unit=f"{WIDGET}/2.0")
    assert pin.upstream.name == "releases"
    assert any(f"{WIDGET}/maven-metadata.xml" in line for line in releases.requests())
    assert not any("widget-2.0" in line for line in legacy.requests() if "GET" in line and ".jar" in line)
