"""maven-metadata.xml of a virtual registry's local upstream (built here, with its checksums)
answered again before Django (registry.response_cache, through packhouse.wsgi as gunicorn runs
it): no query while nothing changed; a deploy into the local upstream's project is seen by the
next request. A released jar is sent again from its file (registry.virtual.views.allow_file_replay),
its checksum never."""

import hashlib

import pytest

from accounts.roles import AccessLevel
from registry.virtual import services
from tests.core.test_download_replay import wsgi
from tests.core.test_response_reuse import queries_for, wsgi_get
from tests.factories import ProjectFactory, local_upstream, token_headers
from tests.replays import asked_twice, registry_publisher_reader

pytestmark = pytest.mark.django_db
METADATA = "com/acme/lib/maven-metadata.xml"


@pytest.fixture
def setup():
    return registry_publisher_reader("maven", "acme", "lib", AccessLevel.DEVELOPER)


def deploy(client, project, publisher, version):
    response = client.put(
        f"/api/v4/projects/{project.pk}/packages/maven/com/acme/lib/{version}/lib-{version}.jar",
        data=f"jar {version}".encode(),
        content_type="application/octet-stream",
        **publisher,
    )
    assert response.status_code in (200, 201), response.content


def url(registry, path):
    return f"/api/v4/virtual_registries/packages/maven/{registry.pk}/{path}"


def test_local_metadata_and_its_checksum_are_replayed_and_follow_deploys(client, setup):
    registry, project, publisher, reader = setup
    deploy(client, project, publisher, "1.0")
    first, second = asked_twice(url(registry, METADATA), **reader)
    assert b"<version>1.0</version>" in second.body
    sha1 = wsgi_get(url(registry, f"{METADATA}.sha1"), **reader)
    assert sha1.body.decode() == hashlib.sha1(first.body).hexdigest()
    assert queries_for(url(registry, f"{METADATA}.sha1"), **reader)[1] == 0

    deploy(client, project, publisher, "2.0")

    again = wsgi_get(url(registry, METADATA), **reader)
    assert b"<version>2.0</version>" in again.body
    assert wsgi_get(url(registry, f"{METADATA}.sha1"), **reader).body.decode() == hashlib.sha1(again.body).hexdigest()


def test_a_registry_option_change_is_seen_by_the_next_request(client, setup):
    """Two local upstreams have the artifact: the first one's metadata, then, with
    merge_maven_metadata switched on, both merged."""
    registry, project, publisher, reader = setup
    other = ProjectFactory(group=registry.group, path="fork", visibility="private")
    other_publisher = token_headers(other, AccessLevel.DEVELOPER)
    local_upstream(registry, other, name="fork")
    deploy(client, project, publisher, "1.0")
    deploy(client, other, other_publisher, "2.0")
    first = wsgi_get(url(registry, METADATA), **reader)
    assert b"<version>1.0</version>" in first.body and b"<version>2.0</version>" not in first.body
    assert queries_for(url(registry, METADATA), **reader)[1] == 0

    services.update_registry(registry, {"merge_maven_metadata": True})

    merged = wsgi_get(url(registry, METADATA), **reader)
    assert b"<version>1.0</version>" in merged.body and b"<version>2.0</version>" in merged.body


def test_a_local_jar_is_replayed_and_its_checksum_is_not(client, setup):
    registry, project, publisher, reader = setup
    deploy(client, project, publisher, "1.0")
    jar = url(registry, "com/acme/lib/1.0/lib-1.0.jar")
    first = wsgi(jar, **reader)
    assert first.status == 200 and first.body == b"jar 1.0" and first.django_ran

    replays = [wsgi(jar, **reader) for _ in range(2)]
    checksums = [wsgi(f"{jar}.sha1", **reader) for _ in range(3)]

    assert all(not answer.django_ran and answer.queries == 0 and answer.same_as(first) for answer in replays)
    assert all(answer.django_ran and answer.status == 200 for answer in checksums)
    assert {answer.body.decode() for answer in checksums} == {hashlib.sha1(b"jar 1.0").hexdigest()}
