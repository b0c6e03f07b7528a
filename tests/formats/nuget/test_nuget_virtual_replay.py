"""NuGet registration and version-list documents of a virtual registry's local upstream answered
again before Django (registry.response_cache, through packhouse.wsgi as gunicorn runs it): no
query while nothing changed; a publish in the local upstream's project is seen by the next
request, a deletion too. A .nupkg is sent again from its file until its version is deleted."""

import pytest

from accounts.roles import AccessLevel
from tests.core.test_download_replay import wsgi
from tests.core.test_response_reuse import queries_for, wsgi_get
from tests.formats.nuget.nupkg import multipart, nupkg
from tests.replays import asked_twice, registry_publisher_reader

pytestmark = pytest.mark.django_db
PACKAGE = "Acme.Widget"


@pytest.fixture
def setup():
    return registry_publisher_reader("nuget", "dotnet", "lib", AccessLevel.MAINTAINER)


def publish(client, project, publisher, version):
    body, content_type = multipart(nupkg(PACKAGE, version))
    endpoint = f"/api/v4/projects/{project.pk}/packages/nuget/"
    response = client.put(endpoint, body, content_type=content_type, **publisher)
    assert response.status_code == 201, response.content


def url(registry, path):
    return f"/api/v4/virtual_registries/packages/nuget/{registry.pk}/{path}"


def registration_versions(answer):
    assert answer.status_code == 200, answer.body
    return sorted(leaf["catalogEntry"]["version"] for page in answer.json()["items"] for leaf in page["items"])


@pytest.mark.parametrize(
    "path, read",
    [
        ("metadata/acme.widget/index.json", registration_versions),
        ("download/acme.widget/index.json", lambda answer: sorted(answer.json()["versions"])),
    ],
)
def test_local_documents_are_replayed_and_follow_publishes(client, setup, path, read):
    registry, project, publisher, reader = setup
    publish(client, project, publisher, "1.0.0")
    _, second = asked_twice(url(registry, path), **reader)
    assert read(second) == ["1.0.0"]

    publish(client, project, publisher, "2.0.0")

    assert read(wsgi_get(url(registry, path), **reader)) == ["1.0.0", "2.0.0"]


def test_a_registration_leaf_is_replayed_and_follows_deletions(client, setup):
    registry, project, publisher, reader = setup
    publish(client, project, publisher, "1.0.0")
    publish(client, project, publisher, "2.0.0")
    leaf = url(registry, "metadata/acme.widget/1.0.0.json")
    assert wsgi_get(leaf, **reader).json()["catalogEntry"]["version"] == "1.0.0"
    assert queries_for(leaf, **reader)[1] == 0

    deleted = client.delete(f"/api/v4/projects/{project.pk}/packages/nuget/{PACKAGE}/1.0.0", **publisher)
    assert deleted.status_code == 204, deleted.content

    assert wsgi_get(leaf, **reader).status_code == 404


def test_a_local_nupkg_is_replayed_until_its_version_is_deleted(client, setup):
    registry, project, publisher, reader = setup
    publish(client, project, publisher, "1.0.0")
    download = url(registry, "download/acme.widget/1.0.0/acme.widget.1.0.0.nupkg")
    first = wsgi(download, **reader)
    assert first.status == 200 and first.django_ran and first.body.startswith(b"PK")

    replay = wsgi(download, **reader)
    assert not replay.django_ran and replay.queries == 0 and replay.same_as(first)

    deleted = client.delete(f"/api/v4/projects/{project.pk}/packages/nuget/{PACKAGE}/1.0.0", **publisher)
    assert deleted.status_code == 204, deleted.content

    assert wsgi(download, **reader).status == 404
