"""Cached files of a PyPI virtual registry sent again before Django (registry.response_cache;
registry.virtual.views.allow_file_replay): a repeated HIT is sent from its file with no query and
the same bytes; a MISS is not remembered; a purge is seen by the next request, which fetches the
file again."""

import hashlib

import pytest

from accounts.roles import AccessLevel
from registry.models import Upstream
from registry.virtual import services
from tests.core.test_download_replay import wsgi
from tests.factories import registry_over_remotes, token_headers
from tests.replays import replayed_count
from tests.upstreams import static_pypi_sdist

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
PAYLOAD = b"an sdist's bytes " * 1000


@pytest.fixture
def server(tmp_path):
    started = static_pypi_sdist(tmp_path / "index", PAYLOAD)
    yield started
    started.stop()


@pytest.fixture
def registry(server):
    registry = registry_over_remotes("pypi", "acme", {"a": f"{server.url}/simple"}, name="py")
    registry.headers = token_headers(registry.group, AccessLevel.GUEST)
    none = f"/api/v4/virtual_registries/packages/pypi/{registry.pk}/files/none/{'0' * 64}/none-1.0.tar.gz"
    assert wsgi(none, **registry.headers).status == 404  # the token's first use (recorded, not due again)
    return registry


def get(registry):
    key = hashlib.sha256(PAYLOAD).hexdigest()
    return wsgi(
        f"/api/v4/virtual_registries/packages/pypi/{registry.pk}/files/demo/{key}/demo-1.0.tar.gz", **registry.headers
    )


def file_fetches(server):
    return [line for line in server.requests() if line.startswith("GET /files/demo-1.0.tar.gz")]


def test_a_cached_file_is_replayed_and_a_purge_fetches_it_again(registry, server):
    before = replayed_count()
    miss = get(registry)
    assert miss.status == 200 and miss.headers["X-Packhouse-Cache"] == "MISS" and miss.body == PAYLOAD
    hit = get(registry)
    assert hit.django_ran and hit.headers["X-Packhouse-Cache"] == "HIT"  # a MISS is not remembered

    replays = [get(registry) for _ in range(3)]

    assert all(not answer.django_ran and answer.queries == 0 and answer.same_as(hit) for answer in replays)
    assert replayed_count() == before + 3
    assert len(file_fetches(server)) == 1

    services.purge_upstream_cache(Upstream.objects.get(name="a"))

    again = get(registry)
    assert again.django_ran and again.headers["X-Packhouse-Cache"] == "MISS" and again.body == PAYLOAD
    assert len(file_fetches(server)) == 2
