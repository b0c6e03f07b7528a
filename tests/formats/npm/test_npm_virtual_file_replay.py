"""Cached tarballs of a virtual registry sent again before Django (registry.response_cache, through
packhouse.wsgi as gunicorn runs it; registry.virtual.views.allow_file_replay): a repeated HIT is
sent from its file with no query, the same bytes and headers; never a MISS; and every change the
answer depends on is seen by the very next request: a rule, a claim, the upstream leaving the
registry, a purge, a deleted cache entry, a revoked token, a lost membership, the packument that
lists it due for revalidation, a local deletion; a replayed hit is still counted once a minute."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import redis_client
from accounts.models import Membership
from accounts.roles import AccessLevel
from api.virtual_registries import cache_entry_id
from registry import formats, response_cache
from registry.models import CacheEntry, RegistryUpstream, Upstream
from registry.virtual import claims, hit_counts, services
from tests.core.test_download_replay import wsgi
from tests.core.test_response_reuse import packument_url, publish
from tests.factories import (
    AccessTokenFactory,
    ProjectFactory,
    local_upstream,
    member,
    registry_over_remotes,
    token_headers,
)
from tests.helpers import auth_headers
from tests.replays import replayed_count
from tests.upstreams import AdvisoryUpstream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
NAME = "@partner/demo"
FILE = "@partner/demo/-/demo-1.0.0.tgz"
CORGI = "application/vnd.npm.install-v1+json"


@pytest.fixture
def upstream_server(tmp_path):
    server = AdvisoryUpstream(tmp_path / "upstream")
    server.files.mkdir(parents=True)
    server.publish(NAME, "1.0.0", {"index.js": "module.exports = 1;\n"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def registry(upstream_server):
    """A remote upstream first, then an (empty) local upstream; a Guest's token and a Maintainer's,
    both made before anything is remembered (a new membership changes the identity epoch)."""
    registry = registry_over_remotes("npm", "acme", {"up": upstream_server.url})
    registry.project = ProjectFactory(group=registry.group, path="web", visibility="private")
    registry.local = local_upstream(registry, registry.project)
    registry.reader = AccessTokenFactory(user=member(registry.group, AccessLevel.GUEST))
    registry.headers = auth_headers(registry.reader.plaintext, "bearer")
    registry.maintainer = token_headers(registry.group, AccessLevel.MAINTAINER)
    for headers in (registry.headers, registry.maintainer):  # their first use (recorded, not due again)
        assert wsgi(file_url(registry, "@partner/none"), **headers).status == 404
    return registry


def file_url(registry, path=FILE):
    return f"/api/v4/virtual_registries/packages/npm/{registry.pk}/{path}"


def get(registry, path=FILE, **headers):
    return wsgi(file_url(registry, path), **registry.headers, **headers)


def warm(registry):
    """MISS, then HIT (remembered), then replayed: Django does not run, no query."""
    miss = get(registry)
    assert miss.status == 200 and miss.headers["X-Packhouse-Cache"] == "MISS"
    hit = get(registry)
    assert hit.django_ran and hit.headers["X-Packhouse-Cache"] == "HIT"
    replay = get(registry)
    assert not replay.django_ran and replay.queries == 0
    return hit, replay


def test_a_repeated_cached_tarball_is_sent_from_its_file(registry, upstream_server):
    before = replayed_count()

    hit, replay = warm(registry)
    more = [get(registry) for _ in range(3)]

    assert replayed_count() == before + 4
    tarball = (upstream_server.files / "-" / "tarballs" / "demo-1.0.0.tgz").read_bytes()
    for answer in (replay, *more):
        assert answer.same_as(hit)  # status, every header, the bytes
        assert answer.queries == 0 and not answer.django_ran
    assert hit.body == tarball
    assert hit.headers["Content-Length"] == str(len(tarball))
    assert hit.headers["X-Checksum-SHA256"] == hashlib.sha256(tarball).hexdigest()


def test_behind_nginx_a_repeated_cached_tarball_is_handed_to_nginx_again(registry, upstream_server, settings):
    settings.X_ACCEL_REDIRECT_PREFIX = "/_storage/"
    before = replayed_count()

    hit, replay = warm(registry)
    more = [get(registry) for _ in range(2)]

    assert replayed_count() == before + 3
    tarball = (upstream_server.files / "-" / "tarballs" / "demo-1.0.0.tgz").read_bytes()
    sha256 = hashlib.sha256(tarball).hexdigest()
    assert hit.headers["X-Accel-Redirect"] == f"/_storage/blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"
    assert hit.body == b""
    for answer in (replay, *more):
        assert answer.same_as(hit)  # status, every header, no body


def test_a_miss_is_not_replayed(registry):
    # The packument cached first: the tarball's MISS then stores a released file only, which
    # changes no epoch (registry.virtual.resolver._entry_changed).
    packument = wsgi(file_url(registry, "@partner%2fdemo"), HTTP_ACCEPT=CORGI, **registry.headers)
    assert packument.status == 200
    miss = get(registry)
    assert miss.headers["X-Packhouse-Cache"] == "MISS"

    after = get(registry)

    assert after.django_ran and after.headers["X-Packhouse-Cache"] == "HIT"


def test_head_is_answered_by_django(registry):
    warm(registry)

    head = get(registry, method="HEAD")

    assert head.django_ran and head.status == 200 and head.body == b""


def test_a_rule_change_is_seen_by_the_next_request(client, registry):
    warm(registry)
    upstream = Upstream.objects.get(name="up")
    rule = {"rule_type": "deny", "pattern_type": "wildcard", "target": "version", "pattern": "1.0.0"}
    created = client.post(
        f"/api/v4/virtual_registries/packages/npm/upstreams/{upstream.pk}/rules",
        rule,
        content_type="application/json",
        **registry.maintainer,
    )
    assert created.status_code == 201, created.content

    assert get(registry).status == 404


def test_a_claim_is_seen_by_the_next_request(registry):
    warm(registry)

    claims.set_scope_claims(registry.local, formats.get("npm").virtual, ["@partner"])

    assert get(registry).status == 404


def test_an_unlinked_upstream_is_seen_by_the_next_request(registry):
    warm(registry)

    services.unlink(RegistryUpstream.objects.get(registry=registry, upstream__name="up"))

    assert get(registry).status == 404


def test_a_purge_makes_the_next_request_fetch_again(registry):
    warm(registry)

    services.purge_upstream_cache(Upstream.objects.get(name="up"))

    again = get(registry)
    assert again.status == 200 and again.headers["X-Packhouse-Cache"] == "MISS"


def test_a_deleted_cache_entry_is_fetched_again(client, registry):
    warm(registry)
    entry = CacheEntry.objects.get(relative_path=f"/{FILE}")

    deleted = client.delete(
        f"/api/v4/virtual_registries/packages/npm/cache_entries/{cache_entry_id(entry)}", **registry.maintainer
    )
    assert deleted.status_code == 204

    again = get(registry)
    assert again.status == 200 and again.headers["X-Packhouse-Cache"] == "MISS"


def test_a_revoked_token_is_refused_at_once(registry):
    warm(registry)

    registry.reader.revoke()

    assert get(registry).status == 401


def test_a_removed_member_is_refused_at_once(registry):
    warm(registry)

    Membership.objects.filter(user=registry.reader.user, group=registry.group).delete()

    assert get(registry).status == 404


def later(monkeypatch, seconds):
    """The replay's clock `seconds` ahead."""
    moment = response_cache.time.time() + seconds
    monkeypatch.setattr(response_cache, "time", type("Clock", (), {"time": staticmethod(lambda: moment)}))


def test_not_replayed_past_the_validity_of_the_packument_that_lists_it(registry, monkeypatch, settings):
    """With retain_removed_versions off, a cached tarball is served while its packument lists it:
    the replay ends when that packument is due for revalidation, and the next request asks the
    upstream again (here: the version is gone, 404)."""
    settings.RESPONSE_REUSE_SECONDS = settings.AUTHORIZATION_MAX_AGE = 3600
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    CacheEntry.objects.filter(kind="metadata").update(
        upstream_checked_at=timezone.now() - timedelta(hours=24, seconds=-20)  # fresh 20 s more
    )
    assert get(registry).headers["X-Packhouse-Cache"] == "HIT"
    assert not get(registry).django_ran
    # 30 s later (the replay's clock), the packument is due for revalidation (the resolver's clock).
    checked = timezone.now() - timedelta(hours=25)
    CacheEntry.objects.filter(kind="metadata").update(upstream_checked_at=checked)

    later(monkeypatch, 30)
    answer = get(registry)

    assert answer.django_ran
    assert answer.status == 200 and answer.headers["X-Packhouse-Cache"] == "HIT"
    assert CacheEntry.objects.filter(kind="metadata", upstream_checked_at__gt=checked).exists()  # asked again


def test_a_replayed_hit_is_counted_once_a_minute_without_ending_the_replay(registry, settings):
    """Hits are counted at most once a minute per cache entry (spec §3.4): a replay notes its hit
    (registry.virtual.hit_counts: kept by the process, sent to Redis in batches, no query) and
    goes on replaying; the flush counts it when the entry was not counted in the minute before,
    as Django would."""
    settings.RESPONSE_REUSE_SECONDS = settings.AUTHORIZATION_MAX_AGE = 3600
    settings.TOKEN_LAST_USED_INTERVAL = 3600
    hit_counts.flush()  # nothing left from another test
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    entry = CacheEntry.objects.filter(relative_path=f"/{FILE}")
    entry.update(downloaded_at=timezone.now() - timedelta(seconds=50))  # counted 50 s ago
    counted = entry.get().downloads_count
    assert get(registry).django_ran  # remembered; not due: not counted
    replay = get(registry)
    assert not replay.django_ran and replay.queries == 0
    assert hit_counts.flush() == 1
    assert entry.get().downloads_count == counted  # the hit came within a minute of the last count

    entry.update(downloaded_at=timezone.now() - timedelta(seconds=70))  # the count is due
    for _ in range(3):
        replay = get(registry)
        assert not replay.django_ran and replay.queries == 0  # a due count no longer ends the replay
    assert entry.get().downloads_count == counted  # noted, not yet written
    assert hit_counts.flush() == 1  # three hits of one entry: one noted
    row = entry.get()
    assert row.downloads_count == counted + 1
    assert timezone.now() - row.downloaded_at < timedelta(seconds=30)
    assert hit_counts.flush() == 0


def test_a_replayed_hit_is_counted_in_the_database_when_redis_refuses_it(registry, settings):
    settings.RESPONSE_REUSE_SECONDS = settings.AUTHORIZATION_MAX_AGE = 3600
    settings.TOKEN_LAST_USED_INTERVAL = 3600
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"
    assert get(registry).django_ran
    entry = CacheEntry.objects.filter(relative_path=f"/{FILE}")
    entry.update(downloaded_at=timezone.now() - timedelta(seconds=70))
    counted = entry.get().downloads_count
    client = redis_client.client()
    key = redis_client.key(hit_counts.HITS)
    client.delete(key)
    client.set(key, "not a hash")  # HSET on it: WRONGTYPE
    try:
        replay = get(registry)
        hit_counts.send_batch()  # this process's hits, now rather than within the second
    finally:
        client.delete(key)
    assert not replay.django_ran
    assert entry.get().downloads_count == counted + 1


def test_a_local_tarball_is_replayed_until_its_package_is_deleted(client, registry):
    headers = token_headers(registry.project, AccessLevel.MAINTAINER, "bearer")
    name = "@acme/widget"
    publish(client, registry.project, "1.0.0", headers, name=name)
    url = file_url(registry, f"{name}/-/widget-1.0.0.tgz")
    first = wsgi(url, **registry.maintainer)  # a Guest does not pull from a private project
    assert first.status == 200 and first.headers["X-Packhouse-Upstream"].startswith("local-")
    assert first.django_ran and first.headers["X-Packhouse-Cache"] == "HIT"
    replay = wsgi(url, **registry.maintainer)
    assert not replay.django_ran and replay.queries == 0 and replay.same_as(first)

    tarball = f"{packument_url(registry.project, name)}/-/widget-1.0.0.tgz/-rev/1"
    assert client.delete(tarball, **headers).status_code == 200

    assert wsgi(url, **registry.maintainer).status == 404


def test_off_when_the_setting_says_so(registry, settings):
    settings.VIRTUAL_FILE_REPLAY = False
    assert get(registry).headers["X-Packhouse-Cache"] == "MISS"

    answers = [get(registry) for _ in range(3)]

    assert all(answer.django_ran and answer.headers["X-Packhouse-Cache"] == "HIT" for answer in answers)
