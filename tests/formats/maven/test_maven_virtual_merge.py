"""Maven metadata and origins through a virtual registry (spec §2.1, §4.2, §4.3) against real
upstream servers (python's http.server on 127.0.0.1):

- `maven-metadata.xml`: the first upstream's by default (GitLab's behaviour); merged from every
  upstream that has it when the registry's `merge_maven_metadata` is on: versions unioned (less
  those an upstream's rules deny), latest/release of the newest document, lastUpdated the newest,
  and checksum files computed over exactly the merged bytes; claims still hide remote versions;
- local upstreams answer metadata generated from their live versions;
- pins: once a file of a version directory was served from an upstream, the version's other
  files come from it only.
"""

import hashlib
import xml.etree.ElementTree as ET

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, NameClaim, OriginPin, RegistryUpstream, Upstream
from tests.factories import AccessTokenFactory, ProjectFactory, member
from tests.formats.maven import test_maven_virtual as base
from tests.formats.maven.test_maven_virtual import body, get, registry_with, remote, write
from tests.helpers import auth_headers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
# The fixtures of the pull-through tests: real upstream servers, a group and a reader of it.
upstreams = base.upstreams
acme, reader = base.acme, base.reader
METADATA = "com/example/lib/maven-metadata.xml"


def metadata(versions, latest=None, release=None, last_updated=None):
    listed = "".join(f"<version>{v}</version>" for v in versions)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<metadata modelVersion="1.1.0">'
        "<groupId>com.example</groupId><artifactId>lib</artifactId><versioning>"
        f"<latest>{latest or versions[-1]}</latest><release>{release or versions[-1]}</release>"
        f"<versions>{listed}</versions>"
        + (f"<lastUpdated>{last_updated}</lastUpdated>" if last_updated else "")
        + "</versioning></metadata>"
    ).encode()


def parsed(data):
    root = ET.fromstring(data)
    versioning = root.find("versioning")
    return {
        "groupId": root.findtext("groupId"),
        "artifactId": root.findtext("artifactId"),
        "latest": versioning.findtext("latest"),
        "release": versioning.findtext("release"),
        "versions": [v.text for v in versioning.find("versions")],
        "lastUpdated": versioning.findtext("lastUpdated"),
    }


@pytest.fixture
def maintainer(acme):
    return auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.MAINTAINER)).plaintext)


def set_merge(client, registry, headers, value):
    response = client.patch(
        f"/api/v4/virtual_registries/packages/maven/registries/{registry.pk}",
        {"merge_maven_metadata": value},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200, response.content
    assert response.json()["merge_maven_metadata"] is value
    return response.json()


def test_first_upstream_wins_by_default(client, acme, reader, maintainer, upstreams):
    first, second = upstreams("first"), upstreams("second")
    mine = write(first.root, METADATA, metadata(["1.0"], last_updated="20240101000000"))
    write(second.root, METADATA, metadata(["1.0", "2.0"], last_updated="20250101000000"))
    registry = registry_with(acme, remote(acme, first), remote(acme, second))
    shown = client.get(f"/api/v4/virtual_registries/packages/maven/registries/{registry.pk}", **maintainer)
    assert shown.json()["merge_maven_metadata"] is False

    response = get(client, registry, METADATA, reader)
    assert response.status_code == 200 and body(response) == mine
    assert not any(METADATA in line for line in second.requests())


def test_merged_metadata_and_its_checksums(client, acme, reader, maintainer, upstreams):
    first, second, third = upstreams("first"), upstreams("second"), upstreams("third")
    write(first.root, METADATA, metadata(["1.0", "1.1"], last_updated="20240101000000"))
    write(second.root, METADATA, metadata(["1.1", "2.0", "2.1-beta", "9.9"], latest="2.1-beta", release="2.0"))
    write(third.root, METADATA, metadata(["1.0", "3.0", "3.1-SNAPSHOT"], release="3.0", last_updated="20250601120000"))
    one, two, three = remote(acme, first), remote(acme, second), remote(acme, third)
    registry = registry_with(acme, one, two, three)
    set_merge(client, registry, maintainer, True)
    # The second may serve no 9.x: its 9.9 is left out of the merge.
    rule = {"rule_type": "deny", "pattern_type": "wildcard", "target": "version", "pattern": "9.*"}
    assert (
        client.post(
            f"/api/v4/virtual_registries/packages/maven/upstreams/{two.pk}/rules",
            rule,
            content_type="application/json",
            **maintainer,
        ).status_code
        == 201
    )

    response = get(client, registry, METADATA, reader)
    assert response.status_code == 200
    merged = body(response)
    assert parsed(merged) == {
        "groupId": "com.example",
        "artifactId": "lib",
        "versions": ["1.0", "1.1", "2.0", "2.1-beta", "3.0", "3.1-SNAPSHOT"],
        "latest": "3.1-SNAPSHOT",  # the third's: its lastUpdated is the newest
        "release": "3.0",
        "lastUpdated": "20250601120000",
    }
    assert response["X-Packhouse-Upstream"] == f"{one.pk},{two.pk},{three.pk}"
    assert response["X-Packhouse-Cache"] == "MISS"
    assert response["X-Checksum-SHA1"] == hashlib.sha1(merged).hexdigest()
    for algorithm in ("sha1", "md5", "sha256", "sha512"):
        checksum = get(client, registry, f"{METADATA}.{algorithm}", reader)
        assert checksum.status_code == 200
        assert checksum.content.decode() == hashlib.new(algorithm, merged).hexdigest()

    # Served again from the three cache entries: the same bytes, revalidated by ETag.
    again = get(client, registry, METADATA, reader)
    assert body(again) == merged and again["X-Packhouse-Cache"] == "HIT"
    assert get(client, registry, METADATA, {**reader, "HTTP_IF_NONE_MATCH": again["ETag"]}).status_code == 304
    head = get(client, registry, METADATA, reader, method="head")
    assert head.status_code == 200 and head.content == b"" and head["Content-Length"] == str(len(merged))
    assert CacheEntry.objects.filter(relative_path=f"/{METADATA}").count() == 3


def test_latest_and_release_denied_by_rules_are_recomputed(client, acme, reader, maintainer, upstreams):
    first, second = upstreams("first"), upstreams("second")
    write(first.root, METADATA, metadata(["1.0"], last_updated="20240101000000"))
    write(second.root, METADATA, metadata(["1.2", "1.10", "5.0"], last_updated="20250101000000"))
    two = remote(acme, second)
    registry = registry_with(acme, remote(acme, first), two)
    set_merge(client, registry, maintainer, True)
    rule = {"rule_type": "deny", "pattern_type": "wildcard", "target": "version", "pattern": "5.*"}
    url = f"/api/v4/virtual_registries/packages/maven/upstreams/{two.pk}/rules"
    assert client.post(url, rule, content_type="application/json", **maintainer).status_code == 201
    merged = parsed(body(get(client, registry, METADATA, reader)))
    assert merged["versions"] == ["1.0", "1.2", "1.10"]
    assert merged["latest"] == merged["release"] == "1.10"  # Maven's order, not the text's


def test_a_failing_upstream_fails_the_merge_unless_cached(client, acme, reader, maintainer, upstreams):
    first, second = upstreams("first"), upstreams("second")
    write(first.root, METADATA, metadata(["1.0"]))
    write(second.root, METADATA, metadata(["2.0"]))
    registry = registry_with(acme, remote(acme, first), remote(acme, second))
    set_merge(client, registry, maintainer, True)
    second.stop()
    refused = get(client, registry, METADATA, reader)
    assert refused.status_code == 502 and "incomplete" in refused.json()["message"]

    second.start()
    assert parsed(body(get(client, registry, METADATA, reader)))["versions"] == ["1.0", "2.0"]
    second.stop()
    CacheEntry.objects.update(upstream_checked_at="2000-01-01T00:00:00Z")
    stale = get(client, registry, METADATA, reader)
    assert stale.status_code == 200 and stale["X-Packhouse-Cache"] == "STALE"
    assert parsed(body(stale))["versions"] == ["1.0", "2.0"]


def test_local_metadata_claims_and_merge(client, acme, maintainer, upstreams):
    reporter = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.REPORTER)).plaintext)
    central = upstreams()
    write(central.root, METADATA, metadata(["1.0", "99.0"], last_updated="20990101000000"))
    project = ProjectFactory(group=acme)
    publisher = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext)
    local = Upstream.objects.create(group=acme, format="maven", kind="local", name="ours", local_project=project)
    for version in ("1.0", "1.5"):
        put = client.put(
            f"/api/v4/projects/{project.pk}/packages/maven/com/example/lib/{version}/lib-{version}.jar",
            data=f"local {version}".encode(),
            content_type="application/octet-stream",
            **publisher,
        )
        assert put.status_code in (200, 201)
    registry = registry_with(acme, local, remote(acme, central))

    # A local upstream answers metadata generated from its live versions, checksums included.
    ours = get(client, registry, METADATA, reporter)
    assert ours.status_code == 200 and ours["X-Packhouse-Upstream"] == f"local-{local.pk}"
    assert parsed(body(ours))["versions"] == ["1.0", "1.5"]
    sha1 = get(client, registry, f"{METADATA}.sha1", reporter)
    assert sha1.content.decode() == hashlib.sha1(body(ours)).hexdigest()

    # Merging does not undo the claim: the remote 99.0 stays hidden, the remote is not asked.
    set_merge(client, registry, maintainer, True)
    assert parsed(body(get(client, registry, METADATA, reporter)))["versions"] == ["1.0", "1.5"]
    assert not any(METADATA in line for line in central.requests())

    # Once the claim is released, the merge holds both sides (local first).
    claim = NameClaim.objects.get(upstream=local, name="com/example/lib")
    owner = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.OWNER)).plaintext)
    released = client.delete(
        f"/api/v4/virtual_registries/packages/maven/local/upstreams/{local.pk}/claims/{claim.pk}", **owner
    )
    assert released.status_code == 204
    merged = parsed(body(get(client, registry, METADATA, reporter)))
    assert merged["versions"] == ["1.0", "1.5", "99.0"] and merged["lastUpdated"] == "20990101000000"


def test_a_version_directory_is_pinned_to_its_first_upstream(client, acme, reader, upstreams):
    first, second = upstreams("first"), upstreams("second")
    pom, jar = "com/example/lib/1.0/lib-1.0.pom", "com/example/lib/1.0/lib-1.0.jar"
    write(first.root, jar, b"first's jar")  # the first has only the jar
    second_pom = write(second.root, pom, b"<project>second's pom</project>")
    second_jar = write(second.root, jar, b"second's jar")
    one, two = remote(acme, first), remote(acme, second)
    registry = registry_with(acme, one, two)

    served_pom = get(client, registry, pom, reader)
    assert body(served_pom) == second_pom and served_pom["X-Packhouse-Upstream"] == str(two.pk)
    pin = OriginPin.objects.get(registry=registry)
    assert pin.unit == "com/example/lib/1.0" and pin.upstream == two
    # Without the pin the first upstream (position 1) would serve its own jar.
    served_jar = get(client, registry, jar, reader)
    assert body(served_jar) == second_jar and served_jar["X-Packhouse-Upstream"] == str(two.pk)
    assert get(client, registry, f"{jar}.sha1", reader).content.decode() == hashlib.sha1(second_jar).hexdigest()
    assert not any(jar in line for line in first.requests())
    # The pinned upstream's 404 is the answer: no fall-through to another origin.
    write(first.root, "com/example/lib/1.0/lib-1.0-sources.jar", b"first's sources")
    missing = get(client, registry, "com/example/lib/1.0/lib-1.0-sources.jar", reader)
    assert missing.status_code == 404 and f"upstream {two.name}" in missing.json()["message"]
    # Another version is another unit.
    write(first.root, "com/example/lib/2.0/lib-2.0.jar", b"first's 2.0")
    assert get(client, registry, "com/example/lib/2.0/lib-2.0.jar", reader)["X-Packhouse-Upstream"] == str(one.pk)

    # Once the pinned upstream leaves the registry, the version comes from what is left.
    RegistryUpstream.objects.filter(registry=registry, upstream=two).delete()
    again = get(client, registry, jar, reader)
    assert body(again) == b"first's jar" and OriginPin.objects.get(unit="com/example/lib/1.0").upstream == one


def test_claimed_group_ids_hide_a_whole_group(client, acme, reader, maintainer, upstreams):
    central = upstreams()
    for path in ("com/acme/lib/1.0/lib-1.0.jar", "com/acme/sub/x/1.0/x-1.0.jar", "com/acmex/y/1.0/y-1.0.jar"):
        write(central.root, path, b"remote")
    registry = registry_with(acme, remote(acme, central))
    created = client.post(
        f"/api/v4/virtual_registries/packages/maven/registries/{registry.pk}/local/upstreams",
        {"name": "ours", "local_project_id": ProjectFactory(group=acme).pk, "claimed_group_ids": "com.acme.*"},
        content_type="application/json",
        **maintainer,
    )
    assert created.status_code == 201, created.content
    assert created.json()["claimed_group_ids"] == ["com.acme.*"]

    for path in ("com/acme/lib/1.0/lib-1.0.jar", "com/acme/sub/x/1.0/x-1.0.jar"):
        hidden = get(client, registry, path, reader)
        assert hidden.status_code == 404 and "claimed by local upstream ours" in hidden.json()["message"]
    assert body(get(client, registry, "com/acmex/y/1.0/y-1.0.jar", reader)) == b"remote"  # another group
    assert not any("com/acme/" in line for line in central.requests())

    url = f"/api/v4/virtual_registries/packages/maven/local/upstreams/{created.json()['id']}"
    refused = client.patch(url, {"claimed_group_ids": ["com.acme"]}, content_type="application/json", **maintainer)
    assert refused.status_code == 400 and "claimed_group_ids" in refused.json()["message"]
    dropping = {"claimed_group_ids": []}
    assert client.patch(url, dropping, content_type="application/json", **maintainer).status_code == 403
    owner = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.OWNER)).plaintext)
    released = client.patch(url, dropping, content_type="application/json", **owner)
    assert released.status_code == 200 and released.json()["claimed_group_ids"] == []
    assert NameClaim.objects.filter(name="com.acme.*").count() == 0
    assert body(get(client, registry, "com/acme/lib/1.0/lib-1.0.jar", reader)) == b"remote"
    # Another format's field is refused.
    npm_field = client.patch(url, {"claimed_scopes": ["@acme"]}, content_type="application/json", **owner)
    assert npm_field.status_code == 400 and list(npm_field.json()["message"]) == ["claimed_scopes"]
