"""Cached simple pages of a virtual registry answered again before Django (registry.response_cache,
through packhouse.wsgi as gunicorn runs it): no query while nothing changed, and never once
anything the page was built from changed: a rule, the upstreams' order, the cached entry (deleted,
purged), the caller's token or membership, or the cached page's metadata validity."""

import hashlib
import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership
from accounts.roles import AccessLevel
from api.virtual_registries import cache_entry_id
from registry import response_cache
from registry.models import CacheEntry, RegistryUpstream, Upstream
from registry.virtual import services
from tests.core.test_response_reuse import queries_for, wsgi_get
from tests.factories import AccessTokenFactory, member, registry_over_remotes, token_headers
from tests.helpers import auth_headers
from tests.replays import replayed_count
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
JSON = "application/vnd.pypi.simple.v1+json"


def write_page(root, versions):
    """`<root>/simple/demo/index.html` listing demo-<version>.tar.gz for each version."""
    page = root / "simple" / "demo"
    page.mkdir(parents=True, exist_ok=True)
    links = "".join(
        f'<a href="../../files/demo-{version}.tar.gz#sha256={hashlib.sha256(version.encode()).hexdigest()}">'
        f"demo-{version}.tar.gz</a>"
        for version in versions
    )
    (page / "index.html").write_text(f"<html><body>{links}</body></html>")


@pytest.fixture
def server(tmp_path):
    """One static server; `<url>/a/simple` and `<url>/b/simple` are two upstreams."""
    write_page(tmp_path / "a", ["1.0", "2.0"])
    write_page(tmp_path / "b", ["9.0"])
    (tmp_path / "c").mkdir()
    started = StaticUpstream(tmp_path, log_path=tmp_path / "log").start()
    yield started
    started.stop()


@pytest.fixture
def registry(server):
    urls = {name: f"{server.url}/{name}/simple" for name in ("a", "b")}
    registry = registry_over_remotes("pypi", "acme", urls, name="py")
    registry.reader = AccessTokenFactory(user=member(registry.group, AccessLevel.GUEST))
    registry.headers = auth_headers(registry.reader.plaintext)
    # Made before anything is remembered: a new membership changes the identity epoch.
    registry.maintainer = token_headers(registry.group, AccessLevel.MAINTAINER)
    return registry


def page_url(registry):
    return f"/api/v4/virtual_registries/packages/pypi/{registry.pk}/simple/demo/"


def versions(answer):
    assert answer.status_code == 200, answer.body
    return sorted(file["filename"].removeprefix("demo-").removesuffix(".tar.gz") for file in answer.json()["files"])


def get(registry):
    return wsgi_get(page_url(registry), HTTP_ACCEPT=JSON, **registry.headers)


def warm(registry):
    """MISS, then HIT (remembered), then replayed: the last runs no query."""
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    assert get(registry).headers["X-Packhouse-Cache"] == "HIT"
    answer, queries = queries_for(page_url(registry), HTTP_ACCEPT=JSON, **registry.headers)
    assert queries == 0 and answer.headers["X-Packhouse-Cache"] == "HIT"
    return answer


def fetches(server, upstream_name):
    return [line for line in server.requests() if line.startswith(f"GET /{upstream_name}/simple/demo/")]


def test_a_cached_simple_page_is_replayed_without_a_query(registry, server):
    before = replayed_count()
    answer = warm(registry)
    assert versions(answer) == ["1.0", "2.0"]
    assert answer.headers["Content-Type"] == JSON
    assert replayed_count() == before + 1
    assert len(fetches(server, "a")) == 1

    html, queries = queries_for(page_url(registry), **registry.headers)  # another Accept: its own answer
    assert queries > 0 and "demo-2.0.tar.gz" in html.body.decode()


def test_a_rule_change_is_seen_by_the_next_request(client, registry):
    warm(registry)
    upstream = Upstream.objects.get(name="a")
    maintainer = registry.maintainer
    rule = {"rule_type": "deny", "pattern_type": "wildcard", "target": "version", "pattern": "2.0"}
    created = client.post(
        f"/api/v4/virtual_registries/packages/pypi/upstreams/{upstream.pk}/rules",
        rule,
        content_type="application/json",
        **maintainer,
    )
    assert created.status_code == 201

    assert versions(get(registry)) == ["1.0"]

    deleted = client.delete(
        f"/api/v4/virtual_registries/packages/pypi/upstreams/{upstream.pk}/rules/{created.json()['id']}", **maintainer
    )
    assert deleted.status_code == 204
    assert versions(get(registry)) == ["1.0", "2.0"]


def test_a_reorder_serves_the_other_upstreams_page(registry):
    warm(registry)
    link = RegistryUpstream.objects.get(registry=registry, upstream__name="b")

    services.move(link, 1)

    answer = get(registry)
    assert versions(answer) == ["9.0"]
    assert answer.headers["X-Packhouse-Upstream"] == str(link.upstream_id)


def test_a_deleted_cache_entry_is_fetched_again(client, registry, server, tmp_path):
    warm(registry)
    write_page(tmp_path / "a", ["1.0", "2.0", "3.0"])
    entry = CacheEntry.objects.get(upstream__name="a", relative_path="/demo/")
    maintainer = registry.maintainer

    deleted = client.delete(
        f"/api/v4/virtual_registries/packages/pypi/cache_entries/{cache_entry_id(entry)}", **maintainer
    )
    assert deleted.status_code == 204

    answer = get(registry)
    assert answer.headers["X-Packhouse-Cache"] == "MISS"
    assert versions(answer) == ["1.0", "2.0", "3.0"]
    assert len(fetches(server, "a")) == 2


def test_a_purged_cache_is_fetched_again(registry, server, tmp_path):
    warm(registry)
    write_page(tmp_path / "a", ["1.0", "4.0"])

    services.purge_upstream_cache(Upstream.objects.get(name="a"))

    assert versions(get(registry)) == ["1.0", "4.0"]
    assert len(fetches(server, "a")) == 2


def test_a_page_refreshed_for_a_newer_file_is_seen_by_the_next_request(registry, server, tmp_path):
    """A lockfile asks for a file the cached page does not list yet: the page is fetched again
    (the miss-driven refresh) and stored, and the replayed page must not outlive it."""
    warm(registry)
    write_page(tmp_path / "a", ["1.0", "2.0", "3.0"])
    # Modified after the cached copy's Last-Modified (whole seconds), so the refresh gets a 200.
    later = time.time() + 10
    os.utime(tmp_path / "a" / "simple" / "demo" / "index.html", (later, later))
    (tmp_path / "a" / "files").mkdir()
    (tmp_path / "a" / "files" / "demo-3.0.tar.gz").write_bytes(b"3.0")
    key = hashlib.sha256(b"3.0").hexdigest()
    file_url = f"/api/v4/virtual_registries/packages/pypi/{registry.pk}/files/demo/{key}/demo-3.0.tar.gz"

    assert wsgi_get(file_url, **registry.headers).body == b"3.0"

    assert versions(get(registry)) == ["1.0", "2.0", "3.0"]


def test_a_shorter_metadata_validity_is_honoured_at_once(client, registry, server):
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    CacheEntry.objects.filter(upstream__name="a").update(upstream_checked_at=timezone.now() - timedelta(hours=2))
    warm_again = [get(registry), queries_for(page_url(registry), HTTP_ACCEPT=JSON, **registry.headers)[1]]
    assert warm_again[0].headers["X-Packhouse-Cache"] == "HIT" and warm_again[1] == 0
    upstream = Upstream.objects.get(name="a")

    changed = client.patch(
        f"/api/v4/virtual_registries/packages/pypi/upstreams/{upstream.pk}",
        {"metadata_cache_validity_hours": 1},
        content_type="application/json",
        **registry.maintainer,
    )
    assert changed.status_code == 200, changed.content

    assert get(registry).headers["X-Packhouse-Cache"] == "REVALIDATED"
    assert len(fetches(server, "a")) == 2


def test_a_deleted_registry_is_gone_at_once(client, registry):
    warm(registry)

    deleted = client.delete(f"/api/v4/virtual_registries/packages/pypi/registries/{registry.pk}", **registry.maintainer)
    assert deleted.status_code == 204, deleted.content

    assert get(registry).status_code == 404


def test_a_cleanup_policy_run_is_seen_by_the_next_request(registry, server):
    from registry.virtual import cleanup
    from registry.virtual.models import VirtualCleanupPolicy

    warm(registry)
    long_ago = timezone.now() - timedelta(days=3)
    CacheEntry.objects.update(created_at=long_ago, downloaded_at=long_ago)
    policy = VirtualCleanupPolicy.objects.create(group=registry.group, enabled=True, keep_n_days_after_download=1)

    assert cleanup.run(policy.pk) == 1

    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    assert len(fetches(server, "a")) == 2


def test_a_revoked_token_is_refused_at_once(registry):
    warm(registry)

    registry.reader.revoke()

    assert get(registry).status_code == 401


def test_a_removed_member_loses_the_page_at_once(registry):
    warm(registry)

    Membership.objects.filter(user=registry.reader.user, group=registry.group).delete()

    assert get(registry).status_code == 404


def test_a_page_due_for_revalidation_is_revalidated_upstream(registry, server, monkeypatch):
    """Not replayed past the cached page's metadata validity (24 h), even well within
    RESPONSE_REUSE_SECONDS: the next request revalidates it with a conditional GET."""
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    entry = CacheEntry.objects.get(upstream__name="a", relative_path="/demo/")
    # The page was fetched 24 h minus 20 s ago: fresh for 20 s more, when this answer is remembered.
    CacheEntry.objects.filter(pk=entry.pk).update(upstream_checked_at=timezone.now() - timedelta(hours=24, seconds=-20))
    assert get(registry).headers["X-Packhouse-Cache"] == "HIT"

    # 40 s later (the replay's clock), the page is due for revalidation (the resolver's clock).
    later = response_cache.time.time() + 40
    monkeypatch.setattr(response_cache, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))
    CacheEntry.objects.filter(pk=entry.pk).update(upstream_checked_at=timezone.now() - timedelta(hours=24, seconds=20))

    answer = get(registry)
    assert answer.headers["X-Packhouse-Cache"] == "REVALIDATED"
    assert len(fetches(server, "a")) == 2
    assert server.requests()[-1].startswith("GET /a/simple/demo/")


def test_an_answer_a_negative_cache_entry_decided_is_not_replayed(registry, server):
    """The first upstream does not have the page (404, remembered for 10 minutes): the second
    one's page is served, and built again on each request, so that the first upstream's page is
    served as soon as its negative entry expires."""
    services.move(RegistryUpstream.objects.get(registry=registry, upstream__name="b"), 2)
    Upstream.objects.filter(name="a").update(url=f"{server.url}/c/simple")  # has no page
    assert versions(get(registry)) == ["9.0"]
    assert get(registry).headers["X-Packhouse-Cache"] == "HIT"

    answer, queries = queries_for(page_url(registry), HTTP_ACCEPT=JSON, **registry.headers)

    assert versions(answer) == ["9.0"] and queries > 0


def test_a_page_served_stale_is_not_replayed(registry, server):
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    CacheEntry.objects.update(upstream_checked_at=timezone.now() - timedelta(days=2))
    server.stop()

    assert get(registry).headers["X-Packhouse-Cache"] == "STALE"
    answer, queries = queries_for(page_url(registry), HTTP_ACCEPT=JSON, **registry.headers)

    assert answer.headers["X-Packhouse-Cache"] == "STALE" and queries > 0
