"""The real `mvn` building through a Maven virtual registry (spec §2.1, §3, §4.2).

The test starts a real upstream, "Maven Central": Debian's /usr/share/maven-repo served over
HTTP by python's http.server on a free 127.0.0.1 port. settings.xml mirrors `central` to the
virtual registry, so Maven resolves its plugins and dependencies through Packhouse. The registry
has the remote upstream and a local upstream (the group's own project, where `mvn deploy` put
an artifact). Then the upstream is stopped and a fresh build (fresh local repository) still
resolves everything from Packhouse's cache.
"""

import urllib.error
import urllib.request

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualRegistry
from tests.clients.maven import test_mvn
from tests.clients.maven.test_mvn import DEBIAN_REPO, PLUGINS, deploy, mvn
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]
MIRROR_ID = "packhouse-virtual"
maven = test_mvn.maven  # the fixture installing Maven when missing
COMMONS_IO = ("commons-io", "commons-io", "2.11.0")


@pytest.fixture
def central(tmp_path):
    server = StaticUpstream(DEBIAN_REPO, log_path=tmp_path / "central.log").start()
    yield server
    server.stop()


def write_settings(directory, registry_url, token):
    path = directory / "settings.xml"
    path.write_text(
        f"""<settings>
  <localRepository>{directory / "m2"}</localRepository>
  <interactiveMode>false</interactiveMode>
  <servers><server><id>{MIRROR_ID}</id><configuration><httpHeaders><property>
    <name>Private-Token</name><value>{token}</value>
  </property></httpHeaders></configuration></server></servers>
  <mirrors><mirror><id>{MIRROR_ID}</id><mirrorOf>*</mirrorOf><url>{registry_url}</url></mirror></mirrors>
</settings>
"""
    )
    return path


def write_consumer(directory, plugins):
    """A project that compiles against commons-io (from "Central") and com.example:my-app (local)."""
    source = directory / "src/main/java/com/example/consumer"
    source.mkdir(parents=True)
    (source / "Main.java").write_text(
        "package com.example.consumer;\n"
        "public class Main { public static String run() throws Exception {\n"
        "  return org.apache.commons.io.IOUtils.toString(new java.io.StringReader(com.example.App.id())); } }\n"
    )
    pinned = "".join(
        f"<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-{name}-plugin</artifactId>"
        f"<version>{plugins[name]}</version></plugin>"
        for name in PLUGINS
    )
    group_id, artifact_id, version = COMMONS_IO
    (directory / "pom.xml").write_text(
        f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId><artifactId>consumer</artifactId><version>1.0</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <maven.compiler.release>17</maven.compiler.release>
  </properties>
  <dependencies>
    <dependency><groupId>{group_id}</groupId><artifactId>{artifact_id}</artifactId><version>{version}</version></dependency>
    <dependency><groupId>com.example</groupId><artifactId>my-app</artifactId><version>1.0</version></dependency>
  </dependencies>
  <build><plugins>{pinned}</plugins></build>
</project>
"""
    )


def build(tmp_path, label, plugins, registry_url, token):
    directory = tmp_path / label
    directory.mkdir()
    write_consumer(directory, plugins)
    settings = write_settings(directory, registry_url, token)
    code, output = mvn(directory, settings, "compile")
    return code, output, directory / "m2"


def test_mvn_builds_through_a_virtual_registry_and_survives_an_upstream_outage(
    virtual_server, maven, central, tmp_path
):
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="libs")
    user = UserFactory(username="builder")
    MembershipFactory(user=user, group=group, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=user).plaintext

    # The group's own artifact, deployed with mvn to the project.
    project_url = virtual_server.api(f"projects/{project.pk}/packages/maven")
    code, output, my_jar = deploy(tmp_path, maven, project_url, ("header", "Private-Token", token), "1.0", "own")
    assert code == 0, output

    registry = VirtualRegistry.objects.create(group=group, format="maven", name="everything")
    local = Upstream.objects.create(group=group, format="maven", kind="local", name="ours", local_project=project)
    remote = Upstream.objects.create(group=group, format="maven", kind="remote", name="central", url=central.url)
    RegistryUpstream.objects.create(registry=registry, upstream=local, position=1)
    RegistryUpstream.objects.create(registry=registry, upstream=remote, position=2)
    registry_url = virtual_server.api(f"virtual_registries/packages/maven/{registry.pk}")

    code, output, m2 = build(tmp_path, "first", maven, registry_url, token)
    assert code == 0, output
    group_id, artifact_id, version = COMMONS_IO
    relative = f"{group_id.replace('.', '/')}/{artifact_id}/{version}/{artifact_id}-{version}.jar"
    assert (m2 / relative).read_bytes() == (DEBIAN_REPO / relative).read_bytes()
    assert (m2 / "com/example/my-app/1.0/my-app-1.0.jar").read_bytes() == my_jar
    compiler = f"org/apache/maven/plugins/maven-compiler-plugin/{maven['compiler']}"
    assert (m2 / compiler).is_dir()  # the plugins came through the virtual registry too
    cached = set(CacheEntry.objects.filter(upstream=remote).values_list("relative_path", flat=True))
    assert f"/{relative}" in cached and any(path.startswith(f"/{compiler}/") for path in cached)
    assert any(relative in line for line in central.requests())
    assert not any("com/example/my-app" in line for line in central.requests())  # local name: never asked

    # "Maven Central" goes down; a fresh build (empty local repository) still works.
    central.stop()
    code, output, m2 = build(tmp_path, "outage", maven, registry_url, token)
    assert code == 0, output
    assert (m2 / relative).read_bytes() == (DEBIAN_REPO / relative).read_bytes()

    # Something never cached is a 503 while the upstream is down, never a 404.
    uncached = next(
        path.relative_to(DEBIAN_REPO).as_posix()
        for path in sorted(DEBIAN_REPO.rglob("*.pom"))
        if f"/{path.relative_to(DEBIAN_REPO).as_posix()}" not in cached
    )
    request = urllib.request.Request(f"{registry_url}/{uncached}", headers={"Private-Token": token})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 503
