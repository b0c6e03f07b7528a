"""npm documents through a virtual registry (spec §2.2, §3.1), against a real Verdaccio upstream:
the abbreviated and full packuments cached apart, tarball URLs rewritten, dist-tags, refusals.
npm audit forwarded to the first remote upstream (a real advisory server, tests/upstreams.py)
without the names local upstreams claim."""

import gzip
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualRegistry
from tests.clients.npm.test_npm_cli import Npm
from tests.factories import AccessTokenFactory, GroupFactory, member
from tests.helpers import auth_headers
from tests.upstreams import AdvisoryUpstream, OutboundProxy, Verdaccio

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
CORGI = "application/vnd.npm.install-v1+json"


@pytest.fixture
def verdaccio(tmp_path):
    directory = tmp_path / "verdaccio"
    directory.mkdir()
    server = Verdaccio(directory).start()
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "package.json").write_text(json.dumps({"name": "@up/pad", "version": "2.1.0", "description": "d"}))
    (package / "index.js").write_text("module.exports = 1;\n")
    (package / ".npmrc").write_text("\n".join(server.npmrc_lines()) + "\n")
    Npm(tmp_path, None).run(package, "publish")
    yield server
    server.stop()


@pytest.fixture
def registry(verdaccio):
    group = GroupFactory(path="acme")
    registry = VirtualRegistry.objects.create(group=group, format="npm", name="npm")
    upstream = Upstream.objects.create(group=group, format="npm", kind="remote", name="v", url=verdaccio.url)
    RegistryUpstream.objects.create(registry=registry, upstream=upstream, position=1)
    registry.reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
    return registry


# A miss stored from the upstream, with the request's own authentication and lookups (see
# test_a_cold_install_asks_the_upstream_once_per_document).
PACKUMENT_MISS_QUERIES = 25
TARBALL_MISS_QUERIES = 21


def url(registry, path):
    return f"/api/v4/virtual_registries/packages/npm/{registry.pk}/{path}"


def test_packuments_are_cached_per_variant_and_rewritten(client, registry):
    abbreviated = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=CORGI, **registry.reader)
    assert abbreviated.status_code == 200 and abbreviated["Vary"] == "Accept, Accept-Encoding"
    assert abbreviated["X-Packhouse-Cache"] == "MISS"
    document = abbreviated.json()
    tarball = document["versions"]["2.1.0"]["dist"]["tarball"]
    assert tarball == f"http://testserver{url(registry, '@up/pad/-/pad-2.1.0.tgz')}"
    assert document["dist-tags"] == {"latest": "2.1.0"}

    full = client.get(url(registry, "@up/pad"), HTTP_ACCEPT="application/json", **registry.reader)
    assert full.status_code == 200 and full.json()["versions"]["2.1.0"]["dist"]["tarball"] == tarball
    assert full.json()["versions"]["2.1.0"]["description"] == "d"
    keys = sorted(CacheEntry.objects.values_list("relative_path", flat=True))
    assert keys == ["/@up/pad", "/@up/pad#abbreviated"]
    assert client.get(url(registry, "@up%2Fpad"), HTTP_ACCEPT=CORGI, **registry.reader)["X-Packhouse-Cache"] == "HIT"

    tags = client.get(url(registry, "-/package/@up%2fpad/dist-tags"), **registry.reader)
    assert tags.json() == {"latest": "2.1.0"}
    got = client.get(tarball.removeprefix("http://testserver"), **registry.reader)
    assert got.status_code == 200 and got["X-Packhouse-Cache"] == "MISS"
    assert CacheEntry.objects.get(relative_path="/@up/pad/-/pad-2.1.0.tgz").verified


def test_refusals_in_npm_shape(client, registry):
    missing = client.get(url(registry, "nothing-here"), **registry.reader)
    assert missing.status_code == 404 and set(missing.json()) == {"error", "message"}
    publish = client.put(url(registry, "@up%2fpad"), data=b"{}", content_type="application/json", **registry.reader)
    assert publish.status_code == 405 and publish["Allow"] == "GET, HEAD"
    assert client.get(url(registry, "-/ping"), **registry.reader).json() == {}
    assert client.get(url(registry, "@up%2fpad")).status_code == 401
    assert client.get(url(registry, "Bad Name"), **registry.reader).status_code == 400


@pytest.mark.parametrize("accept", [CORGI, "application/json"], ids=["abbreviated", "full"])
def test_a_tarball_newer_than_the_cached_packument_refreshes_it(client, registry, verdaccio, tmp_path, accept):
    first = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=accept, **registry.reader)
    assert list(first.json()["versions"]) == ["2.1.0"]
    package = tmp_path / "pkg"
    (package / "package.json").write_text(json.dumps({"name": "@up/pad", "version": "2.2.0"}))
    (tmp_path / "again").mkdir()
    Npm(tmp_path / "again", None).run(package, "publish")
    # A lockfile install asks for the tarball straight away; the packument is still fresh.
    newer = client.get(url(registry, "@up/pad/-/pad-2.2.0.tgz"), **registry.reader)
    assert newer.status_code == 200
    refreshed = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=accept, **registry.reader)
    assert sorted(refreshed.json()["versions"]) == ["2.1.0", "2.2.0"]
    # The variant that was cached was refreshed; no other one was fetched for the tarball.
    variant = "#abbreviated" if accept == CORGI else ""
    assert sorted(CacheEntry.objects.filter(kind="metadata").values_list("relative_path", flat=True)) == [
        f"/@up/pad{variant}"
    ]


def test_a_cold_install_asks_the_upstream_once_per_document(client, registry, verdaccio, django_assert_max_num_queries):
    """What `npm install` asks for a package nothing has cached: the full packument, then its
    tarball. The upstream is asked once for each, and two entries are stored: the tarball's URL
    and integrity come from the cached full packument, no abbreviated one is fetched for it. A
    later request for the tarball (its packument still listing it) asks the upstream nothing."""
    before = len(verdaccio.requests())
    with django_assert_max_num_queries(PACKUMENT_MISS_QUERIES):
        full = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT="application/json", **registry.reader)
    assert full.status_code == 200 and full["X-Packhouse-Cache"] == "MISS"
    tarball_path = full.json()["versions"]["2.1.0"]["dist"]["tarball"].removeprefix("http://testserver")
    with django_assert_max_num_queries(TARBALL_MISS_QUERIES):
        tarball = client.get(tarball_path, **registry.reader)
    assert tarball.status_code == 200 and tarball["X-Packhouse-Cache"] == "MISS"
    stored = next((verdaccio.storage / "@up" / "pad").glob("*.tgz")).read_bytes()
    assert b"".join(tarball.streaming_content) == stored
    # Verdaccio logs each request twice (received, answered).
    assert verdaccio.requests()[before:] == ["GET /@up%2Fpad"] * 2 + ["GET /@up/pad/-/pad-2.1.0.tgz"] * 2
    entries = {entry.relative_path: entry for entry in CacheEntry.objects.all()}
    assert sorted(entries) == ["/@up/pad", "/@up/pad/-/pad-2.1.0.tgz"]
    assert entries["/@up/pad/-/pad-2.1.0.tgz"].verified
    assert [entry.downloads_count for entry in entries.values()] == [1, 1]

    again = client.get(tarball_path, **registry.reader)
    assert again.status_code == 200 and again["X-Packhouse-Cache"] == "HIT"
    assert len(verdaccio.requests()) == before + 4


def test_the_groups_own_scope_is_never_taken_from_upstream(client, verdaccio):
    """A local upstream claims `@<top-level group>`: every remote name in that scope is hidden."""
    from registry.virtual import services

    group = GroupFactory(path="up")
    registry = VirtualRegistry.objects.create(group=group, format="npm", name="npm")
    remote = Upstream.objects.create(group=group, format="npm", kind="remote", name="v", url=verdaccio.url)
    RegistryUpstream.objects.create(registry=registry, upstream=remote, position=1)
    reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext)
    assert client.get(url(registry, "@up%2fpad"), **reader).status_code == 200  # no local upstream yet

    services.create_local_upstream(
        registry, {"name": "ours", "local_group_id": group.pk}, can_read_target=lambda target: None
    )
    hidden = client.get(url(registry, "@up%2fpad"), **reader)
    assert hidden.status_code == 404 and "claimed by local upstream ours" in hidden.json()["message"]


def rules_url(upstream):
    return f"/api/v4/virtual_registries/packages/npm/upstreams/{upstream.pk}/rules"


def test_regex_rules_run_on_re2(client, registry):
    """Regex rules (spec §1.9) are RE2's: what RE2 refuses is a 400 when saved, nothing kept; a
    denial is a 404 and an audit event (at most one a minute per path and caller)."""
    from accounts.models import AuditEvent

    upstream = Upstream.objects.get()
    maintainer = auth_headers(AccessTokenFactory(user=member(registry.group, AccessLevel.MAINTAINER)).plaintext)
    for refused in (r"(a)\1", "(?=@up).*", "x{2000}", "[a-"):
        body = {"rule_type": "deny", "pattern_type": "regex", "target": "name", "pattern": refused}
        response = client.post(rules_url(upstream), body, content_type="application/json", **maintainer)
        assert response.status_code == 400 and list(response.json()["message"]) == ["pattern"], refused
    assert not upstream.rules.exists()

    allow_scope = {"rule_type": "allow", "pattern_type": "regex", "target": "scope", "pattern": "UP|other"}
    assert (
        client.post(rules_url(upstream), allow_scope, content_type="application/json", **maintainer).status_code == 201
    )
    pad = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=CORGI, **registry.reader)
    assert pad.status_code == 200  # scopes compare case-insensitively
    # A pattern that backtracking engines take exponential time on: RE2 answers at once.
    deny = {"rule_type": "deny", "pattern_type": "regex", "target": "name", "pattern": "(@?[a-z]+/?)+[0-9]"}
    assert client.post(rules_url(upstream), deny, content_type="application/json", **maintainer).status_code == 201
    long_name = "@up/" + "a" * 200
    assert client.get(url(registry, long_name.replace("/", "%2f")), **registry.reader).status_code == 404  # no such
    version_rule = {"rule_type": "deny", "pattern_type": "regex", "target": "version", "pattern": r"2\.1\.\d+"}
    assert (
        client.post(rules_url(upstream), version_rule, content_type="application/json", **maintainer).status_code == 201
    )
    for _ in range(2):
        denied = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=CORGI, **registry.reader)
        assert denied.status_code == 404 and "rules" in denied.json()["message"]  # its only version is denied
    tarball = client.get(url(registry, "@up/pad/-/pad-2.1.0.tgz"), **registry.reader)
    assert tarball.status_code == 404
    events = AuditEvent.objects.filter(action="virtual_registry_upstream_artifact_denied").order_by("id")
    assert [event.target_details for event in events] == ["/@up/pad", "/@up/pad/-/pad-2.1.0.tgz"]
    assert events[0].entity_id == registry.group_id and events[0].details["upstream_ids"] == [upstream.pk]
    assert not CacheEntry.objects.filter(relative_path__endswith=".tgz").exists()


@pytest.mark.parametrize("packument_first", [False, True], ids=["tarball-only", "after-the-full-packument"])
def test_an_integrity_failure_is_an_audit_event(client, registry, verdaccio, packument_first):
    from accounts.models import AuditEvent

    if packument_first:  # `npm install`: the tarball's integrity comes from the full packument
        full = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT="application/json", **registry.reader)
        assert full.status_code == 200
    tarball = next((verdaccio.storage / "@up" / "pad").glob("*.tgz"))
    tarball.write_bytes(tarball.read_bytes() + b"tampered")
    response = client.get(url(registry, "@up/pad/-/pad-2.1.0.tgz"), **registry.reader)
    assert response.status_code == 502 and response.json()["message"] == "502 Upstream integrity check failed"
    event = AuditEvent.objects.get(action="virtual_registry_integrity_failure")
    upstream = Upstream.objects.get()
    assert event.entity_id == registry.group_id and event.target_details == "/@up/pad/-/pad-2.1.0.tgz"
    assert event.details["upstream_id"] == upstream.pk and event.details["algorithm"] == "sha512"
    assert event.details["expected"] != event.details["actual"] and len(event.details["actual"]) == 128
    assert not CacheEntry.objects.filter(relative_path__endswith=".tgz").exists()


def test_removed_versions_are_not_served_unless_the_registry_retains_them(client, registry, verdaccio, tmp_path):
    """A version unpublished upstream (spec §3.2.3): once the packument no longer lists it, its
    cached tarball is 404 (a lockfile install fails as it would upstream), unless the registry's
    `retain_removed_versions` is on."""
    package = tmp_path / "pkg"
    (package / "package.json").write_text(json.dumps({"name": "@up/pad", "version": "2.2.0"}))
    (tmp_path / "second").mkdir()
    Npm(tmp_path / "second", None).run(package, "publish")
    cached = client.get(url(registry, "@up/pad/-/pad-2.2.0.tgz"), **registry.reader)
    assert cached.status_code == 200 and cached["X-Packhouse-Cache"] == "MISS"
    assert client.get(url(registry, "@up/pad/-/pad-2.2.0.tgz"), **registry.reader)["X-Packhouse-Cache"] == "HIT"

    (tmp_path / "third").mkdir()
    Npm(tmp_path / "third", None).run(package, "unpublish", "@up/pad@2.2.0")
    # The cached packument is still fresh: the tarball is still listed as far as anyone knows.
    assert client.get(url(registry, "@up/pad/-/pad-2.2.0.tgz"), **registry.reader).status_code == 200
    # Past the metadata validity the packument is revalidated: 2.2.0 is gone.
    upstream = Upstream.objects.get()
    stale = timezone.now() - timedelta(hours=upstream.metadata_cache_validity_hours + 1)
    CacheEntry.objects.filter(kind="metadata").update(upstream_checked_at=stale)
    gone = client.get(url(registry, "@up/pad/-/pad-2.2.0.tgz"), **registry.reader)
    assert gone.status_code == 404
    packument = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=CORGI, **registry.reader).json()
    assert list(packument["versions"]) == ["2.1.0"] and packument["dist-tags"]["latest"] == "2.1.0"
    assert client.get(url(registry, "@up/pad/-/pad-2.1.0.tgz"), **registry.reader).status_code == 200

    maintainer = auth_headers(AccessTokenFactory(user=member(registry.group, AccessLevel.MAINTAINER)).plaintext)
    settings_url = f"/api/v4/virtual_registries/packages/npm/registries/{registry.pk}"
    bad = client.patch(
        settings_url, {"retain_removed_versions": "maybe"}, content_type="application/json", **maintainer
    )
    assert bad.status_code == 400 and bad.json() == {"error": "retain_removed_versions is invalid"}
    changed = client.patch(
        settings_url, {"retain_removed_versions": True}, content_type="application/json", **maintainer
    )
    assert changed.json()["retain_removed_versions"] is True
    kept = client.get(url(registry, "@up/pad/-/pad-2.2.0.tgz"), **registry.reader)
    assert kept.status_code == 200 and kept["X-Packhouse-Cache"] == "HIT"


# --- rendered answers: memoized, gzipped, 304 (issue 16) ---------------------------------------


def packument(client, registry, name="@up%2fpad", **headers):
    return client.get(url(registry, name), HTTP_ACCEPT=CORGI, **registry.reader, **headers)


def versions_of(response):
    assert response.status_code == 200, response.content
    return sorted(response.json()["versions"])


def test_a_repeated_packument_is_answered_without_reading_the_stored_document(
    client, registry, django_assert_max_num_queries
):
    """The answer rendered from a cached upstream document is remembered under the document's
    identity: the next identical request neither reads the stored document nor parses it (the
    document is taken out of the blob store meanwhile), in a bounded number of queries."""
    from django.core.files.base import ContentFile

    from registry.storage import BlobStore

    first = packument(client, registry)
    assert first["X-Packhouse-Cache"] == "MISS"
    entry = CacheEntry.objects.select_related("blob").get(relative_path="/@up/pad#abbreviated")
    store = BlobStore()
    with store.open(entry.blob) as handle:
        stored = handle.read()
    store.storage.delete(entry.blob.key)
    try:
        # token, registry, membership, links, claims, rules, cache entry: no download count
        # (once a minute), no blob read.
        with django_assert_max_num_queries(8):
            again = packument(client, registry)
    finally:
        store.storage.save(entry.blob.key, ContentFile(stored))
    assert again.status_code == 200 and again["X-Packhouse-Cache"] == "HIT"
    assert again.content == first.content and again["ETag"] == first["ETag"]


def test_packuments_are_gzipped_and_answer_304(client, registry):
    plain = packument(client, registry)
    assert "Content-Encoding" not in plain and plain["Vary"] == "Accept, Accept-Encoding"
    zipped = packument(client, registry, HTTP_ACCEPT_ENCODING="br, gzip")
    assert zipped["Content-Encoding"] == "gzip" and gzip.decompress(zipped.content) == plain.content
    assert zipped["ETag"] == plain["ETag"] and zipped["X-Packhouse-Cache"] == "HIT"

    not_modified = packument(client, registry, HTTP_IF_NONE_MATCH=plain["ETag"])
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified["ETag"] == plain["ETag"]
    full = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT="application/json", **registry.reader)
    assert full["ETag"] != plain["ETag"]  # the full packument is another document
    other = client.get(
        url(registry, "@up%2fpad"), HTTP_ACCEPT="application/json", HTTP_IF_NONE_MATCH=plain["ETag"], **registry.reader
    )
    assert other.status_code == 200 and other.json()["versions"]["2.1.0"]["description"] == "d"


def test_a_revalidated_document_and_a_rule_change_make_a_new_packument_at_once(client, registry, tmp_path):
    maintainer = auth_headers(AccessTokenFactory(user=member(registry.group, AccessLevel.MAINTAINER)).plaintext)
    first = packument(client, registry)
    assert versions_of(first) == ["2.1.0"] and packument(client, registry)["ETag"] == first["ETag"]

    # The upstream publishes 2.2.0; once the cached packument is stale it is revalidated.
    package = tmp_path / "pkg"
    (package / "package.json").write_text(json.dumps({"name": "@up/pad", "version": "2.2.0"}))
    (tmp_path / "again").mkdir()
    Npm(tmp_path / "again", None).run(package, "publish")
    assert versions_of(packument(client, registry)) == ["2.1.0"]  # still fresh: the cached one
    upstream = Upstream.objects.get()
    stale = timezone.now() - timedelta(hours=upstream.metadata_cache_validity_hours + 1)
    CacheEntry.objects.filter(kind="metadata").update(upstream_checked_at=stale)
    revalidated = packument(client, registry)
    assert revalidated["X-Packhouse-Cache"] == "REVALIDATED" and versions_of(revalidated) == ["2.1.0", "2.2.0"]
    assert revalidated["ETag"] != first["ETag"]
    assert versions_of(packument(client, registry)) == ["2.1.0", "2.2.0"]

    # A rule added, then removed: each is seen by the very next request.
    deny = {"rule_type": "deny", "pattern_type": "wildcard", "target": "version", "pattern": "2.2.*"}
    created = client.post(rules_url(upstream), deny, content_type="application/json", **maintainer)
    assert created.status_code == 201, created.content
    denied = packument(client, registry)
    assert versions_of(denied) == ["2.1.0"] and denied.json()["dist-tags"]["latest"] == "2.1.0"
    removed = client.delete(f"{rules_url(upstream)}/{created.json()['id']}", **maintainer)
    assert removed.status_code == 204
    assert versions_of(packument(client, registry)) == ["2.1.0", "2.2.0"]


def test_a_local_publish_makes_a_new_packument_at_once(client):
    """Through a local upstream, the packument is remembered under its package's stamp: the next
    request after a publish (or a deletion) has it."""
    from tests.factories import ProjectFactory
    from tests.formats.npm.npmdocs import publish_document

    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="web")
    registry = VirtualRegistry.objects.create(group=group, format="npm", name="npm")
    local = Upstream.objects.create(group=group, format="npm", kind="local", name="ours", local_project=project)
    RegistryUpstream.objects.create(registry=registry, upstream=local, position=1)
    developer = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext, "bearer")
    registry.reader = developer

    def publish(version):
        response = client.put(
            f"/api/v4/projects/{project.pk}/packages/npm/@acme%2fpad",
            data=json.dumps(publish_document("@acme/pad", version)),
            content_type="application/json",
            **developer,
        )
        assert response.status_code == 200, response.content

    assert packument(client, registry, "@acme%2fpad").status_code == 404
    publish("1.0.0")
    first = packument(client, registry, "@acme%2fpad")
    assert versions_of(first) == ["1.0.0"] and first["X-Packhouse-Upstream"] == f"local-{local.pk}"
    assert packument(client, registry, "@acme%2fpad", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    tarball = first.json()["versions"]["1.0.0"]["dist"]["tarball"]
    assert tarball == f"http://testserver{url(registry, '@acme/pad/-/pad-1.0.0.tgz')}"
    publish("1.1.0")
    second = packument(client, registry, "@acme%2fpad", HTTP_IF_NONE_MATCH=first["ETag"])
    assert versions_of(second) == ["1.0.0", "1.1.0"] and second["ETag"] != first["ETag"]
    maintainer = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER)).plaintext)
    listed = client.get(f"/api/v4/projects/{project.pk}/packages", **maintainer).json()
    gone = next(package for package in listed if package["version"] == "1.0.0")
    deleted = client.delete(f"/api/v4/projects/{project.pk}/packages/{gone['id']}", **maintainer)
    assert deleted.status_code == 204, deleted.content
    assert versions_of(packument(client, registry, "@acme%2fpad")) == ["1.1.0"]


def test_tarball_urls_use_the_external_url_not_the_host(client, registry, settings):
    """`dist.tarball` names Packhouse by PACKHOUSE_EXTERNAL_URL when it is set, whatever Host the
    request names, as the project endpoints do; a document remembered before the setting changed
    is not answered after it."""
    settings.ALLOWED_HOSTS = ["*"]
    tarball = url(registry, "@up/pad/-/pad-2.1.0.tgz")
    assert packument(client, registry).json()["versions"]["2.1.0"]["dist"]["tarball"] == f"http://testserver{tarball}"
    settings.EXTERNAL_URL = "https://packages.example.com"
    for accept in (CORGI, "application/json"):
        answer = client.get(url(registry, "@up%2fpad"), HTTP_ACCEPT=accept, HTTP_HOST="evil.example", **registry.reader)
        assert answer.status_code == 200, answer.content
        assert answer.json()["versions"]["2.1.0"]["dist"]["tarball"] == f"https://packages.example.com{tarball}"
    assert packument(client, registry).json()["versions"]["2.1.0"]["dist"]["tarball"] == (
        f"https://packages.example.com{tarball}"
    )


# --- npm audit, forwarded to the first remote upstream (issue 16) ------------------------------

BULK = "-/npm/v1/security/advisories/bulk"
QUICK = "-/npm/v1/security/audits/quick"
UPSTREAM_SECRET = "upstream-secret-e7c1"
ADVISORY = {
    "id": 1001,
    "url": "https://github.com/advisories/GHSA-test-0001",
    "title": "Prototype pollution in pad-lite",
    "severity": "high",
    "vulnerable_versions": "<1.0.1",
    "cwe": ["CWE-1321"],
    "cvss": {"score": 7.5, "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N"},
}


@pytest.fixture
def advisories(tmp_path):
    server = AdvisoryUpstream(tmp_path / "advisories").start()
    server.set_advisories({"pad-lite": [ADVISORY], "quick": {"advisories": {"1001": ADVISORY}, "actions": []}})
    yield server
    server.stop()


def publish_locally(client, project, name, headers):
    from tests.formats.npm.npmdocs import publish_document

    response = client.put(
        f"/api/v4/projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}",
        data=json.dumps(publish_document(name, "1.0.0")),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200, response.content


@pytest.fixture
def audited(client, advisories):
    """A registry of group `acme`: the advisory server as its remote upstream (position 1, with an
    auth token), the group's project `web` as its local upstream (position 2: claims hide names
    whatever the position), `acme-internal` published there. `reader` a Guest's token."""
    from registry import secrets
    from registry.virtual import services
    from tests.factories import ProjectFactory

    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="web")
    registry = VirtualRegistry.objects.create(group=group, format="npm", name="npm")
    remote = Upstream.objects.create(
        group=group,
        format="npm",
        kind="remote",
        name="advisories",
        url=advisories.url,
        auth_token_encrypted=secrets.encrypt(UPSTREAM_SECRET),
    )
    RegistryUpstream.objects.create(registry=registry, upstream=remote, position=1)
    services.create_local_upstream(
        registry, {"name": "ours", "local_project_id": project.pk}, can_read_target=lambda target: None
    )
    developer = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext, "bearer")
    publish_locally(client, project, "acme-internal", developer)
    registry.token = AccessTokenFactory(user=member(group, AccessLevel.GUEST)).plaintext
    registry.reader = auth_headers(registry.token, "bearer")
    registry.remote = remote
    return registry


def post_audit(client, registry, path, document, *, headers=None, encoding="gzip"):
    body = json.dumps(document).encode() if not isinstance(document, bytes) else document
    extra = {}
    if encoding == "gzip":
        body = gzip.compress(body)
        extra["HTTP_CONTENT_ENCODING"] = "gzip"
    return client.post(
        url(registry, path),
        data=body,
        content_type="application/json",
        **extra,
        **(registry.reader if headers is None else headers),
    )


def test_bulk_audit_is_forwarded_without_private_names(client, audited, advisories, caplog):
    """npm's gzipped bulk body: the names the local upstream claims (its published
    `acme-internal`, the group's scope `@acme`) and the names the remote's rules refuse never
    reach the upstream; the upstream gets Packhouse's credential for it, never the caller's, and
    its answer is passed on, not cached."""
    from registry.virtual.models import UpstreamRule

    caplog.set_level("DEBUG")
    UpstreamRule.objects.create(
        upstream=audited.remote, rule_type="deny", pattern_type="wildcard", target="scope", pattern="corp"
    )
    body = {
        "pad-lite": ["1.0.0", "0.9.0"],
        "@up/pad": ["2.1.0"],
        "acme-internal": ["1.0.0"],
        "@acme/secret": ["3.0.0"],
        "@corp/tool": ["1.0.0"],
        "Not A Name": ["1.0.0"],
    }
    response = post_audit(client, audited, BULK, body)
    assert response.status_code == 200, response.content
    assert response.json() == {"pad-lite": [ADVISORY]}
    assert response["Cache-Control"] == "no-store"
    assert response["X-Packhouse-Upstream"] == str(audited.remote.pk)
    [forwarded] = advisories.audits()
    assert forwarded["path"] == "/" + BULK and forwarded["content_encoding"] == "gzip"
    assert json.loads(forwarded["body"]) == {"pad-lite": ["1.0.0", "0.9.0"], "@up/pad": ["2.1.0"]}
    assert forwarded["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert not CacheEntry.objects.exists()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert UPSTREAM_SECRET not in logged and audited.token not in logged

    # Plain JSON (no Content-Encoding) is read too; a body of private names only is not forwarded.
    alone = post_audit(client, audited, BULK, {"@acme/secret": ["1.0.0"]}, encoding=None)
    assert alone.status_code == 200 and alone.json() == {}
    assert len(advisories.audits()) == 1


def test_quick_audit_is_stripped_at_every_depth(client, audited, advisories):
    """npm 6's legacy body: private names leave `requires`, the `dependencies` tree at any depth
    (with their subtrees), aliases of private names, the install list and the root's name."""
    body = {
        "name": "@acme/app",
        "version": "1.0.0",
        "install": ["pad-lite@1.0.0", "@acme/secret@^3"],
        "remove": [],
        "metadata": {"npm_version": "6.14.18", "node_version": "v20.0.0", "platform": "linux"},
        "requires": {"pad-lite": "^1.0.0", "acme-internal": "^1.0.0", "lp": "npm:@acme/pad@^1.0.0"},
        "dependencies": {
            "pad-lite": {
                "version": "1.0.0",
                "integrity": "sha512-AAAA",
                "resolved": "http://packhouse.internal/api/v4/virtual_registries/packages/npm/1/pad-lite/-/x.tgz",
                "requires": {"left": "^2.0.0", "@acme/deep": "^1.0.0"},
                "dependencies": {
                    "left": {
                        "version": "2.0.0",
                        "requires": {"acme-internal": "1.0.0"},
                        "dependencies": {
                            "acme-internal": {"version": "1.0.0", "dependencies": {"right": {"version": "1.0.0"}}},
                            "right": {"version": "3.0.0"},
                        },
                    },
                    "@acme/deep": {"version": "1.0.0"},
                },
            },
            "acme-internal": {"version": "1.0.0", "dependencies": {"public-under-private": {"version": "1.0.0"}}},
            "lp": {"version": "npm:@acme/pad@1.0.0"},
            "pub-alias": {"version": "npm:pad-lite@1.0.0"},
        },
    }
    response = post_audit(client, audited, QUICK, body)
    assert response.status_code == 200, response.content
    assert response.json() == {"advisories": {"1001": ADVISORY}, "actions": []}
    [forwarded] = advisories.audits()
    assert forwarded["path"] == "/" + QUICK
    assert json.loads(forwarded["body"]) == {
        "version": "1.0.0",
        "install": ["pad-lite@1.0.0"],
        "remove": [],
        "metadata": {"npm_version": "6.14.18", "node_version": "v20.0.0", "platform": "linux"},
        "requires": {"pad-lite": "^1.0.0"},
        "dependencies": {
            "pad-lite": {
                "version": "1.0.0",
                "integrity": "sha512-AAAA",
                "requires": {"left": "^2.0.0"},
                "dependencies": {
                    "left": {"version": "2.0.0", "requires": {}, "dependencies": {"right": {"version": "3.0.0"}}}
                },
            },
            "pub-alias": {"version": "npm:pad-lite@1.0.0"},
        },
    }
    assert "acme" not in forwarded["body"]


def test_audit_bodies_over_the_cap_or_unreadable_are_refused(client, audited, advisories):
    from packages_npm.audit import MAX_BODY

    # A gzip body that inflates past 10 MiB: 413 before any of it is parsed.
    padding = b'{"pad-lite":["1.0.0"],"x":"' + b"a" * MAX_BODY + b'"}'
    bomb = post_audit(client, audited, BULK, padding)
    assert bomb.status_code == 413 and set(bomb.json()) == {"error", "message"}, bomb.content
    plain = post_audit(client, audited, BULK, padding, encoding=None)
    assert plain.status_code == 413 and "over" in plain.json()["error"]
    for refused in (b"[1, 2]", b"not json", b""):
        answer = post_audit(client, audited, QUICK, refused)
        assert answer.status_code == 400 and set(answer.json()) == {"error", "message"}, refused
    broken = client.post(
        url(audited, BULK),
        data=b"\x1f\x8bnot gzip at all",
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        **audited.reader,
    )
    assert broken.status_code == 400 and "gzip" in broken.json()["error"]
    truncated = client.post(
        url(audited, BULK),
        data=gzip.compress(b'{"pad-lite":["1.0.0"]}')[:-12],
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        **audited.reader,
    )
    assert truncated.status_code == 400
    exotic = post_audit(
        client,
        audited,
        BULK,
        {"pad-lite": ["1.0.0"]},
        headers={**audited.reader, "HTTP_CONTENT_ENCODING": "br"},
        encoding=None,
    )
    assert exotic.status_code == 400
    assert advisories.audits() == []  # nothing reached the upstream


def test_without_a_remote_upstream_audit_answers_no_advisories(client, audited, advisories):
    RegistryUpstream.objects.filter(upstream=audited.remote).delete()
    response = post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]})
    assert response.status_code == 200 and response.json() == {}
    assert advisories.audits() == []


def test_a_failing_first_remote_is_an_error_and_the_next_is_not_asked(client, audited, advisories, tmp_path):
    """Never `{}` (which npm reports as "found 0 vulnerabilities") and never a fall-through to
    the next remote upstream: unreachable or unhealthy 503, an error answer 502."""
    second = AdvisoryUpstream(tmp_path / "second").start()
    try:
        other = Upstream.objects.create(group=audited.group, format="npm", kind="remote", name="second", url=second.url)
        RegistryUpstream.objects.create(registry=audited, upstream=other, position=3)

        advisories.set_advisories({"status": 500})
        failed = post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]})
        assert failed.status_code == 502, failed.content
        assert failed.json()["error"] == "Bad Gateway - upstream advisories answered 500"
        advisories.set_advisories({"status": 401})  # Packhouse's credential refused: not the caller's 401
        assert post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]}).status_code == 502

        advisories.stop()
        down = post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]})
        assert down.status_code == 503 and set(down.json()) == {"error", "message"}
        assert "upstream advisories is unavailable" in down.json()["error"]
        post_audit(client, audited, QUICK, {"requires": {"pad-lite": "1.0.0"}})
        audited.remote.refresh_from_db()
        assert audited.remote.retry_at is not None  # 500, down, down: its breaker is open
        advisories.start()
        advisories.set_advisories({})
        before = len(advisories.audits())
        unhealthy = post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]})
        assert unhealthy.status_code == 503 and "unhealthy" in unhealthy.json()["error"]
        assert 0 < int(unhealthy["Retry-After"]) <= 30  # the breaker's first back-off step
        assert len(advisories.audits()) == before  # not asked while its breaker is open
        assert second.audits() == []
    finally:
        second.stop()


def test_audit_follows_the_virtual_registry_access_rules(client, audited, advisories):
    anonymous = post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]}, headers={})
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Basic realm="GitLab Virtual Registry"'
    unknown = post_audit(
        client, audited, BULK, {"pad-lite": ["1.0.0"]}, headers=auth_headers("glpat-unknown", "bearer")
    )
    assert unknown.status_code == 401
    stranger = auth_headers(AccessTokenFactory(user=member(GroupFactory(path="other"))).plaintext, "bearer")
    assert post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]}, headers=stranger).status_code == 404
    listed = client.get(url(audited, BULK), **audited.reader)
    assert listed.status_code == 405 and listed["Allow"] == "POST"
    assert advisories.audits() == []


def test_audit_goes_through_the_outbound_proxy(client, audited, advisories, settings, tmp_path):
    """PACKHOUSE_VR_OUTBOUND_PROXY: the forwarded audit goes through the proxy (to the vetted
    address) like every upstream request; with the proxy down it is a 503, never sent another way."""
    proxy = OutboundProxy(tmp_path / "proxy").start()
    try:
        settings.VR_OUTBOUND_PROXY = proxy.url
        response = post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"], "acme-internal": ["1.0.0"]})
        assert response.status_code == 200 and response.json() == {"pad-lite": [ADVISORY]}
        assert f"127.0.0.1:{advisories.port}" in proxy.connected()
        assert json.loads(advisories.audits()[0]["body"]) == {"pad-lite": ["1.0.0"]}
    finally:
        proxy.stop()
    down = post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]})
    assert down.status_code == 503
    assert len(advisories.audits()) == 1


def test_a_large_audit_costs_a_few_queries(client, audited, advisories, django_assert_max_num_queries):
    """12,000 names: the claims are looked up 5,000 keys a query (3 queries), not one per name:
    token, registry, memberships (2), links, claims (3), rules."""
    body = {f"pkg-{index}": ["1.0.0"] for index in range(12000)}
    assert post_audit(client, audited, BULK, {"pad-lite": ["1.0.0"]}).status_code == 200  # token use recorded
    with django_assert_max_num_queries(9):
        response = post_audit(client, audited, BULK, {**body, "acme-internal": ["1.0.0"]})
    assert response.status_code == 200 and response.json() == {}
    assert json.loads(advisories.audits()[-1]["body"]) == body
