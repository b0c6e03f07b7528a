"""Packuments of a virtual registry's local upstream answered again before Django
(registry.response_cache, through packhouse.wsgi as gunicorn runs it): no query while nothing
changed; a publish or a deletion in the local upstream's project, and the upstream leaving the
registry, are seen by the very next request."""

import pytest

from accounts.roles import AccessLevel
from registry.models import RegistryUpstream
from registry.virtual import services
from tests.core.test_response_reuse import packument_url, publish, queries_for, wsgi_get
from tests.factories import registry_over_project, token_headers
from tests.replays import asked_twice

pytestmark = pytest.mark.django_db
NAME = "@acme/widget"
CORGI = "application/vnd.npm.install-v1+json"


@pytest.fixture
def setup():
    registry, project = registry_over_project("npm", "acme", "web")
    return registry, project, token_headers(registry.group, AccessLevel.MAINTAINER, "bearer")


def virtual_url(registry):
    return f"/api/v4/virtual_registries/packages/npm/{registry.pk}/{NAME.replace('/', '%2f')}"


def versions(answer):
    assert answer.status_code == 200, answer.body
    return sorted(answer.json()["versions"])


def test_a_local_packument_is_replayed_and_follows_publishes(client, setup):
    registry, project, headers = setup
    publish(client, project, "1.0.0", headers, name=NAME)
    _, second = asked_twice(virtual_url(registry), **headers)
    assert versions(second) == ["1.0.0"]
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
