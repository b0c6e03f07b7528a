"""Packuments of a virtual registry's local upstream answered again before Django
(registry.response_cache, through packhouse.wsgi as gunicorn runs it): no query while nothing
changed; a publish or a deletion in the local upstream's project, and the upstream leaving the
registry, are seen by the very next request."""

import pytest

from accounts.roles import AccessLevel
from registry.models import RegistryUpstream, VirtualRegistry
from registry.virtual import services
from tests.core.test_response_reuse import packument_url, publish, queries_for, wsgi_get
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db
NAME = "@acme/widget"
CORGI = "application/vnd.npm.install-v1+json"


@pytest.fixture
def setup():
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="web", visibility="private")
    registry = VirtualRegistry.objects.create(group=group, format="npm", name="npm")
    services.create_local_upstream(
        registry, {"name": "ours", "local_project_id": project.pk}, can_read_target=lambda target: None
    )
    headers = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.MAINTAINER)).plaintext, "bearer")
    return registry, project, headers


def virtual_url(registry):
    return f"/api/v4/virtual_registries/packages/npm/{registry.pk}/{NAME.replace('/', '%2f')}"


def versions(answer):
    assert answer.status_code == 200, answer.body
    return sorted(answer.json()["versions"])


def test_a_local_packument_is_replayed_and_follows_publishes(client, setup):
    registry, project, headers = setup
    publish(client, project, "1.0.0", headers, name=NAME)
    first, first_queries = queries_for(virtual_url(registry), **headers)
    second, second_queries = queries_for(virtual_url(registry), **headers)
    assert first_queries > 0 and second_queries == 0
    assert second.body == first.body and versions(second) == ["1.0.0"]
    assert second.headers["X-Packhouse-Upstream"].startswith("local-")
    abbreviated, queries = queries_for(virtual_url(registry), HTTP_ACCEPT=CORGI, **headers)
    assert queries > 0 and versions(abbreviated) == ["1.0.0"]  # its own answer, remembered apart
    assert queries_for(virtual_url(registry), HTTP_ACCEPT=CORGI, **headers)[1] == 0

    publish(client, project, "1.1.0", headers, name=NAME)

    assert versions(wsgi_get(virtual_url(registry), **headers)) == ["1.0.0", "1.1.0"]
    assert versions(wsgi_get(virtual_url(registry), HTTP_ACCEPT=CORGI, **headers)) == ["1.0.0", "1.1.0"]


def test_a_local_deletion_is_seen_by_the_next_request(client, setup):
    registry, project, headers = setup
    publish(client, project, "1.0.0", headers, name=NAME)
    publish(client, project, "2.0.0", headers, name=NAME)
    assert versions(wsgi_get(virtual_url(registry), **headers)) == ["1.0.0", "2.0.0"]
    assert queries_for(virtual_url(registry), **headers)[1] == 0

    tarball = f"{packument_url(project, NAME)}/-/widget-2.0.0.tgz/-rev/1"
    assert client.delete(tarball, **headers).status_code == 200

    assert versions(wsgi_get(virtual_url(registry), **headers)) == ["1.0.0"]


def test_an_upstream_leaving_the_registry_is_seen_by_the_next_request(client, setup):
    registry, project, headers = setup
    publish(client, project, "1.0.0", headers, name=NAME)
    assert wsgi_get(virtual_url(registry), **headers).status_code == 200
    assert queries_for(virtual_url(registry), **headers)[1] == 0

    services.unlink(RegistryUpstream.objects.get(registry=registry))

    assert wsgi_get(virtual_url(registry), **headers).status_code == 404
