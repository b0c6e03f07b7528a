"""Resolution of one client request through a virtual registry (spec §3, §4.1).

1. The format's VirtualSupport parsed the path (kind, normalized name).
2. Claims: when local upstreams of the registry claim the name (registry.virtual.claims), only
   they are asked; remote upstreams are neither contacted nor served from cache for it.
3. Otherwise every upstream in position order. Local: the caller's pullable packages, from the
   blob store. Remote: a fresh cache entry is served (HIT); a stale one revalidated with a
   conditional GET (304: REVALIDATED; 200: replaced wholesale); a live negative entry skips the
   upstream; a miss fetches, verifies against the digests the upstream promises
   (VirtualSupport.expected_digests: a mismatch is 502 and nothing is stored), stores, serves (MISS).
4. 404/410 upstream: a negative entry, next upstream. Any other failure stops the walk (never
   fall through past a failing upstream): a cached copy is served STALE, else 503 (unreachable)
   or 502 (an error answer).

Checksum paths (`x.jar.sha1`) are answered from the bytes of their base file, resolved the same
way, so a checksum always matches the file this registry serves.

Pins (spec §4.3): the first file served of a unit (VirtualSupport.pin_unit: one version of a
package, say) records its upstream in the registry; the unit's other files are asked of that
upstream only (its 404 is the answer), while it is still a candidate for the name (a new claim
or rule that excludes it drops the pin).

Merged documents (VirtualSupport.merges: a version list that the format merges when the
registry's option says so): every candidate is asked and the format merges the documents that
exist, each upstream's versions filtered by its rules. A candidate that fails without a cached
copy makes the merge 502 (an incomplete merge could hide the private side's versions).
"""

import copy
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote, urlsplit

from django.core.cache import caches
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts import roles
from registry import epochs, policy
from registry.errors import BadGateway, NotFound, UpstreamUnavailable
from registry.formats import FileKind
from registry.lru import BoundedLRU
from registry.storage import BlobStore
from registry.virtual import addresses, changes, claims, events, flight, health, http, rules
from registry.virtual.models import (
    CacheEntry,
    NegativeEntry,
    OriginPin,
    RegistryUpstream,
    UpstreamRule,
    path_digest,
)

logger = logging.getLogger(__name__)
SIDECAR_CAP = 4096
DOWNLOAD_COUNT_INTERVAL = timedelta(minutes=1)
REFRESH_SECONDS = 60


@dataclass
class Served:
    """What answers the request: a blob, and how it was found (the response headers)."""

    blob: object  # a Blob, or None when `content` holds a document built here (local metadata)
    file_name: str
    content_type: str
    cache: str  # HIT | MISS | REVALIDATED | STALE
    upstream: str  # "<id>" or "local-<id>"
    kind: str
    stale_reason: str | None = None
    age: int | None = None
    etag: str = ""
    last_modified: str = ""
    content: bytes | None = None
    rules: list = field(default_factory=list)  # the serving remote upstream's UpstreamRules
    # What the bytes are, without reading them: a local document's key (its upstream, the
    # caller's projects and the package's epoch), else the blob's digest (see `identity`).
    content_identity: str = ""
    # Whether an answer built from this may be replayed before Django (registry.response_cache,
    # through registry.virtual.views.memoized_answer), and until when: a cached upstream document
    # until its validity ends (None: no time limit). Not replayable: anything not a HIT, and an
    # answer that a negative cache entry of an upstream before it (or in its merge) decided.
    replayable: bool = True
    fresh_until: object = None  # a datetime
    # A cached remote file: its cache entry, on which a replay of it notes its hits
    # (registry.virtual.hit_counts).
    entry_id: int | None = None
    # A cached remote answer: when its cache entry's bytes were last stored (CacheEntry.updated_at).
    updated_at: object = None  # a datetime

    @property
    def identity(self):
        """A name for these bytes that changes whenever they do: what a document rendered from
        them is memoized under (registry.documents.memoized_document)."""
        if self.content_identity:
            return self.content_identity
        if self.blob is not None:
            return f"blob:{self.blob.sha256}"
        return "content:" + hashlib.sha256(self.content or b"").hexdigest()

    def allows(self, fmt, path, version):
        """Whether the serving upstream's rules let `version` of `path`'s name through (spec
        §1.9): what a metadata document keeps of its versions (VirtualSupport.rule_values)."""
        if not self.rules:
            return True
        values = {**fmt.virtual.rule_values(path), "version": version}
        return rules.allowed(self.rules, values, fmt.virtual)

    source: object = None  # the Upstream that answered (None for a merged document)

    def read(self, cap):
        """The bytes (metadata documents), refusing more than `cap`."""
        if self.content is not None:
            return self.content
        if self.blob.size > cap:
            raise BadGateway("502 Bad Gateway - the cached document is too large")
        with BlobStore().open(self.blob) as handle:
            return handle.read()


def links_of(registry):
    return list(
        RegistryUpstream.objects.filter(registry=registry)
        .select_related("upstream__local_project__group", "upstream__local_group")
        .order_by("position")
    )


class _Remembered:
    """What one resolution may take from the process's memory: with a request's RequestMemory
    (registry.access_cache) whose package epochs are the registry's and `path`'s name's
    (registry.virtual.views.VirtualRegistryView.resolve), the registry's upstreams, their rules,
    the name's claims, a local upstream's projects and files; without one, everything is read."""

    def __init__(self, memory):
        self.memory = memory

    def under_registry(self, key, compute):
        """Remembered until the registry's or the name's epoch changes (or the caller's): every
        write to the registry, its links, upstreams, rules, claims or the name's packages."""
        if self.memory is None:
            return compute()
        return self.memory.remember_under_packages(("virtual", *key), compute)

    def for_caller(self, key, compute):
        """Remembered for the presented credential until the identity epochs change (any change
        to a user, group, project, membership or that credential)."""
        if self.memory is None:
            return compute()
        return self.memory.remember(("virtual", self.memory.credential_key, *key), compute)


def _upstreams(registry, remembered):
    """The registry's upstreams in order. Remembered ones are copied for each request (the
    resolver notes an upstream's health on its object) and marked `health_read_earlier`: their
    health is read again before one is asked for anything (_fetch), as it changes without a new
    epoch (registry.virtual.health)."""
    if remembered.memory is None:
        return [link.upstream for link in links_of(registry)]
    links = remembered.under_registry(("links", registry.pk), lambda: links_of(registry))
    upstreams = [copy.copy(link.upstream) for link in links]
    for upstream in upstreams:
        upstream.health_read_earlier = True
    return upstreams


def resolve(registry, principal, fmt, path, memory=None):
    """The Served answer for `path` (a VirtualPath) in `registry`, or NotFound / BadGateway /
    UpstreamUnavailable. `memory`: a RequestMemory under the epochs of the registry and of
    `path`'s name (see _Remembered), or None."""
    remembered = _Remembered(memory)
    upstreams = _upstreams(registry, remembered)
    local = [u for u in upstreams if u.is_local]
    keys = fmt.virtual.claim_keys(path.name)
    claimed = remembered.under_registry(
        ("claims", registry.pk, *keys), lambda: {u.pk for u in claims.claiming(local, keys)}
    )
    claiming = [u for u in local if u.pk in claimed]
    by_upstream = {} if claiming else remembered.under_registry(("rules", registry.pk), lambda: _rules_of(upstreams))
    walk = claiming or _by_rules(registry, upstreams, fmt, path, by_upstream)
    if fmt.virtual.merges(path, registry_options(registry, fmt)):
        return _merged(registry, walk, principal, fmt, path, claiming, by_upstream, remembered)
    unit = fmt.virtual.pin_unit(path)
    pin = None
    if unit is not None:
        pin = OriginPin.objects.filter(registry=registry, unit_digest=path_digest(unit)).first()
        if pin is not None and any(upstream.pk == pin.upstream_id for upstream in walk):
            walk = [upstream for upstream in walk if upstream.pk == pin.upstream_id]
        elif pin is not None:  # its upstream left the registry, or a claim or rule now excludes it
            pin.delete()
            pin = None
    found = _walk(registry, walk, principal, fmt, path, by_upstream, remembered)
    if found is None:
        if claiming:
            names = ", ".join(upstream.name for upstream in claiming)
            raise NotFound(f"404 Not Found - {path.name} is claimed by local upstream {names}")
        if pin is not None:
            raise NotFound(f"404 Not Found - {unit} comes from upstream {walk[0].name}, which does not have it")
        raise NotFound()
    if unit is not None and pin is None:
        pin, _ = OriginPin.objects.get_or_create(
            registry=registry, unit_digest=path_digest(unit), defaults={"unit": unit, "upstream": found.source}
        )
        if pin.upstream_id != found.source.pk:  # a concurrent request pinned another upstream first
            return resolve(registry, principal, fmt, path)
    return found


def _answer(registry, upstream, principal, fmt, path, by_upstream, remembered):
    """One upstream's answer for `path` (Served, with its source and rules), or None."""
    if upstream.is_local:
        found = _from_local(upstream, principal, fmt, path, remembered)
    else:
        found = _from_remote(upstream, fmt, path, retain=registry.retain_removed_versions)
    if found is not None:
        found.source = upstream
        found.rules = by_upstream.get(upstream.pk, [])
    return found


def _walk(registry, walk, principal, fmt, path, by_upstream, remembered):
    """The first answer of `walk`'s upstreams, in order, or None."""
    passed_remote = False
    for upstream in walk:
        found = _answer(registry, upstream, principal, fmt, path, by_upstream, remembered)
        if found is not None:
            if passed_remote:  # a negative cache entry decided it: it changes when that expires
                found.replayable = False
            return found
        passed_remote = passed_remote or not upstream.is_local
    return None


def registry_options(registry, fmt):
    """The format's registry options (VirtualSupport.registry_options) as `registry` sets them."""
    stored = registry.options if isinstance(registry.options, dict) else {}
    return {name: stored.get(name, default) for name, default in fmt.virtual.registry_options.items()}


def _merged(registry, walk, principal, fmt, path, claiming, by_upstream, remembered):
    """One document merged from every candidate that has `path` (see the module's docstring)."""
    answers = []
    passed_remote = False
    for upstream in walk:
        try:
            found = _answer(registry, upstream, principal, fmt, path, by_upstream, remembered)
        except (UpstreamUnavailable, BadGateway) as exc:
            raise BadGateway(
                f"502 Bad Gateway - upstream {upstream.name} failed, the merged document would be incomplete"
            ) from exc
        if found is not None:
            answers.append(found)
        else:
            passed_remote = passed_remote or not upstream.is_local
    if not answers:
        if claiming:
            names = ", ".join(upstream.name for upstream in claiming)
            raise NotFound(f"404 Not Found - {path.name} is claimed by local upstream {names}")
        raise NotFound()
    if len(answers) == 1 and not answers[0].rules:
        answers[0].replayable = answers[0].replayable and not passed_remote
        return answers[0]

    def keeps(found):
        return (lambda version: found.allows(fmt, path, version)) if found.rules else None

    documents = [(found.read(fmt.virtual.metadata_cap), keeps(found)) for found in answers]
    content = fmt.virtual.merge(documents)
    stale = [found for found in answers if found.cache == "STALE"]
    states = {found.cache for found in answers}
    cache = next((state for state in ("STALE", "MISS", "REVALIDATED") if state in states), "HIT")
    limits = [found.fresh_until for found in answers if found.fresh_until is not None]
    return Served(
        replayable=not passed_remote and all(found.replayable for found in answers),
        fresh_until=min(limits, default=None),
        blob=None,
        file_name=path.file_name,
        content_type=fmt.virtual.content_type(path),
        cache=cache,
        upstream=",".join(found.upstream for found in answers),
        kind=path.kind,
        stale_reason=stale[0].stale_reason if stale else None,
        age=max((found.age or 0) for found in stale) if stale else None,
        content=content,
    )


def _rules_of(upstreams):
    """{upstream id: [UpstreamRule]} of the remote upstreams that have rules."""
    remote = [upstream.pk for upstream in upstreams if not upstream.is_local]
    by_upstream = {}
    for rule in UpstreamRule.objects.filter(upstream_id__in=remote).order_by("id"):
        by_upstream.setdefault(rule.upstream_id, []).append(rule)
    return by_upstream


def _by_rules(registry, upstreams, fmt, path, by_upstream):
    """The upstreams whose rules let this request through (local upstreams take no rules)."""
    remote = [upstream.pk for upstream in upstreams if not upstream.is_local]
    if not by_upstream:
        return upstreams
    values = fmt.virtual.rule_values(path)
    kept = [u for u in upstreams if u.is_local or rules.allowed(by_upstream.get(u.pk, []), values, fmt.virtual)]
    if upstreams and not kept:
        logger.warning("virtual_registry_upstream_denied path=%s upstreams=%s", path.relative_path, remote)
        events.rule_denied(registry, path, remote)
        raise NotFound("404 Not Found - denied by the upstreams' rules")
    return kept


# --- local upstreams ---------------------------------------------------------------------------


def local_projects(upstream, principal, memory=policy.NO_MEMORY):
    """The projects of a local upstream's target whose packages the caller may pull."""
    if upstream.local_project_id:
        project = upstream.local_project
        return [project] if policy.can(principal, project, roles.READ_PACKAGE, memory) else []
    return policy.pullable_projects(principal, upstream.local_group)


def _from_local(upstream, principal, fmt, path, remembered):
    target = ("local-projects", upstream.local_project_id, upstream.local_group_id)
    projects = remembered.for_caller(
        target, lambda: list(local_projects(upstream, principal, remembered.memory or policy.NO_MEMORY))
    )
    if not projects:
        return None
    ids = tuple(sorted(project.pk for project in projects))
    if path.kind == FileKind.METADATA:
        document, identity = _local_document(upstream, projects, fmt, path)
        if document is None:
            return None
        return Served(
            content_identity=identity,
            blob=None,
            file_name=path.file_name,
            content_type=fmt.virtual.content_type(path),
            cache="HIT",
            upstream=f"local-{upstream.pk}",
            kind=path.kind,
            content=document,
        )
    content = remembered.under_registry(
        ("local-content", ids, path.relative_path), lambda: fmt.virtual.local_content(projects, path)
    )
    if content is not None:
        return Served(
            blob=None,
            file_name=path.file_name,
            content_type=fmt.virtual.content_type(path),
            cache="HIT",
            upstream=f"local-{upstream.pk}",
            kind=path.kind,
            content=content,
        )
    package_file = remembered.under_registry(
        ("local-file", ids, path.relative_path), lambda: fmt.virtual.local_file(projects, path)
    )
    if package_file is None:
        return None
    return Served(
        blob=package_file.blob,
        file_name=path.file_name,
        content_type=fmt.virtual.content_type(path),
        cache="HIT",
        upstream=f"local-{upstream.pk}",
        kind=path.kind,
    )


# A local document is remembered per (upstream, the caller's projects, path) under its package's
# epoch (registry.epochs, bumped by every write to a package of that name), read before the rows:
# a publish, a deletion or a status change makes the next request build it again. Per process,
# bounded in bytes; None (no such package) is remembered too.
_LOCAL_DOCUMENTS_MAX_BYTES = 32 * 1024 * 1024
_local_documents = BoundedLRU(
    limit=lambda: _LOCAL_DOCUMENTS_MAX_BYTES, cost=lambda key, value: len(value[0] or b"") + len(key) + 256
)


def _local_document(upstream, projects, fmt, path):
    """(the document's bytes or None, its identity: "" when it was built for this request only)."""
    stamps = epochs.current([epochs.package(fmt.name, path.name)])
    if stamps is None:  # epochs unreadable: built for this request
        return fmt.virtual.local_document(projects, path), ""
    stamps = [stamp.decode() if isinstance(stamp, bytes) else stamp for stamp in stamps]
    material = [upstream.pk, sorted(project.pk for project in projects), path.cache_key, stamps]
    key = "local:" + hashlib.sha256(json.dumps(material).encode()).hexdigest()
    remembered = _local_documents.get(key)
    if remembered is None:
        remembered = (fmt.virtual.local_document(projects, path),)
        _local_documents.put(key, remembered)
    return remembered[0], key


# --- remote upstreams --------------------------------------------------------------------------


def upstream_url(upstream, relative_path, url_path=None):
    return upstream.url.rstrip("/") + (
        url_path if url_path is not None else quote(relative_path, safe="/@:+,;=~!$&'()*-._")
    )


def live_entry(upstream, relative_path):
    return (
        CacheEntry.objects.select_related("blob")
        .filter(upstream=upstream, path_digest=path_digest(relative_path), status=CacheEntry.Status.DEFAULT)
        .first()
    )


def cached_metadata_keys(upstream):
    """The cache keys of the metadata documents cached from a remote upstream."""
    return CacheEntry.objects.filter(
        upstream=upstream, kind=FileKind.METADATA, status=CacheEntry.Status.DEFAULT
    ).values_list("relative_path", flat=True)


def fresh_until(entry, upstream):
    """When a cache entry must be revalidated upstream; None: never, by time."""
    if entry.kind == FileKind.IMMUTABLE:
        return None
    hours = upstream.metadata_cache_validity_hours if entry.kind == FileKind.METADATA else upstream.cache_validity_hours
    if entry.kind == FileKind.MUTABLE and hours == 0:
        return None
    return entry.upstream_checked_at + timedelta(hours=hours)


def is_fresh(entry, upstream, now):
    until = fresh_until(entry, upstream)
    return until is None or now < until


def _hit(entry, upstream, fmt, path, now, listing=None):
    """A fresh cache entry served. `listing`: the metadata document that was found to still list
    the file (retain_removed_versions off; False: the upstream could not be asked): the answer
    holds while that document does, and is not replayed unless that was a HIT too."""
    served = _served_entry(entry, fmt, path, "HIT", now)
    served.fresh_until = fresh_until(entry, upstream)
    if listing is not None:
        if listing is False or listing.cache != "HIT" or not listing.replayable:
            served.replayable = False
        elif listing.fresh_until is not None:
            served.fresh_until = min(filter(None, (served.fresh_until, listing.fresh_until)))
    return served


def _negative(upstream, relative_path, now):
    return NegativeEntry.objects.filter(
        upstream=upstream, path_digest=path_digest(relative_path), expires_at__gt=now
    ).exists()


def _remember_missing(upstream, relative_path, now):
    if not upstream.negative_cache_minutes:
        return
    NegativeEntry.objects.update_or_create(
        upstream=upstream,
        path_digest=path_digest(relative_path),
        defaults={"expires_at": now + timedelta(minutes=upstream.negative_cache_minutes)},
    )


def _served_entry(entry, fmt, path, cache, now, stale_reason=None):
    _count_download(entry, now)
    age = int((now - entry.upstream_checked_at).total_seconds()) if stale_reason else None
    return Served(
        blob=entry.blob,
        file_name=path.file_name,
        content_type=fmt.virtual.content_type(path),
        cache=cache,
        upstream=str(entry.upstream_id),
        kind=entry.kind,
        stale_reason=stale_reason,
        age=age,
        etag=entry.upstream_etag,
        last_modified=entry.upstream_last_modified,
        entry_id=entry.pk,
        updated_at=entry.updated_at,
    )


def _count_download(entry, now):
    """Downloads are counted at most once a minute per entry (one write, not one per request;
    a replayed hit is counted by registry.virtual.hit_counts under the same rule)."""
    if entry.downloaded_at is None or now - entry.downloaded_at >= DOWNLOAD_COUNT_INTERVAL:
        CacheEntry.objects.filter(pk=entry.pk).filter(
            Q(downloaded_at__isnull=True) | Q(downloaded_at__lte=now - DOWNLOAD_COUNT_INTERVAL)
        ).update(downloads_count=F("downloads_count") + 1, downloaded_at=now)


def _stale_or(entry, fmt, path, now, reason, error):
    if entry is not None:
        logger.warning("serving %s of upstream %s stale: %s", path.relative_path, entry.upstream_id, reason)
        return _served_entry(entry, fmt, path, "STALE", now, stale_reason=reason)
    raise error


_UNREAD = object()


def _listing(upstream, path):
    """The metadata document a file's origin is read from, and its live cache entry (None: not
    cached): `path.metadata`, unless only one of `path.metadata_alternates` is cached (another
    variant that lists the file as well), in one query. So a file costs no second document
    fetched and stored when the client already had the other variant cached."""
    if not path.metadata_alternates:
        return path.metadata, _UNREAD
    candidates = [path.metadata, *path.metadata_alternates]
    digests = [path_digest(candidate.cache_key) for candidate in candidates]
    entries = {
        entry.path_digest: entry
        for entry in CacheEntry.objects.select_related("blob").filter(
            upstream=upstream, path_digest__in=digests, status=CacheEntry.Status.DEFAULT
        )
    }
    for candidate, digest in zip(candidates, digests, strict=True):
        if digest in entries:
            return candidate, entries[digest]
    return path.metadata, None


def _origin(upstream, fmt, path):
    """Where a file reachable only through a metadata document is: (url, expected digests), or
    None when the upstream does not list it. A file the cached document does not list (a
    lockfile naming a version newer than the document) makes the document be fetched again, at
    most once a minute per document and upstream (the miss-driven refresh, spec §3.2.5)."""
    listing, entry = _listing(upstream, path)
    document = _from_remote(upstream, fmt, listing, entry=entry)
    if document is None:
        return None
    found = fmt.virtual.file_origin(path, document.read(fmt.virtual.metadata_cap), upstream.url)
    if found is None and document.cache == "HIT" and _may_refresh(upstream, listing):
        document = _from_remote(upstream, fmt, listing, force=True)
        if document is None:
            return None
        found = fmt.virtual.file_origin(path, document.read(fmt.virtual.metadata_cap), upstream.url)
    if found is None:
        return None
    url, expected = found
    if not addresses.same_host(url, upstream.url, upstream.file_hosts):
        host = urlsplit(url).netloc[:255]
        raise BadGateway(f"502 Bad Gateway - upstream {upstream.name} lists the file on {host}, not in its file_hosts")
    return url, expected


def fetch_from(upstream, fmt, path):
    """`path` (a document) of one remote upstream, as Served (cached, revalidated, verified like
    any), or None when the upstream does not have it."""
    return _from_remote(upstream, fmt, path)


def _reader(upstream, fmt):
    def read(path):
        served = _from_remote(upstream, fmt, path)
        return None if served is None else served.read(fmt.virtual.metadata_cap)

    return read


def _may_refresh(upstream, path):
    return caches["default"].add(f"virtual-refresh:{upstream.pk}:{path_digest(path.cache_key)}", 1, REFRESH_SECONDS)


def _still_listed(upstream, fmt, path, entry, now):
    """Whether the upstream's metadata still lists a cached file (spec §3.2.3): the metadata is
    taken as the resolver serves it (revalidated once stale), and read again only when it
    changed since the file was last found in it (`upstream_checked_at` of the file's entry, which
    nothing else uses for immutable files). When the upstream cannot be asked, the cached file
    stays served. (whether it is listed, the metadata's Served it was found in, or False when the
    upstream could not be asked.)"""
    listing, listing_entry = _listing(upstream, path)
    try:
        document = _from_remote(upstream, fmt, listing, entry=listing_entry)
    except (UpstreamUnavailable, BadGateway):
        return True, False
    if document is None:
        return False, None  # the name is gone upstream
    if document.updated_at <= entry.upstream_checked_at:  # the metadata's entry, as it was just read
        return True, document
    if fmt.virtual.file_origin(path, document.read(fmt.virtual.metadata_cap), upstream.url) is None:
        return False, None
    CacheEntry.objects.filter(pk=entry.pk).update(upstream_checked_at=now)
    return True, document


def _listed_hit(entry, upstream, fmt, path, now, check):
    """A fresh entry served (None: `check` found its metadata no longer lists it)."""
    if not check:
        return _hit(entry, upstream, fmt, path, now)
    listed, listing = _still_listed(upstream, fmt, path, entry, now)
    return _hit(entry, upstream, fmt, path, now, listing) if listed else None


def _from_remote(upstream, fmt, path, force=False, retain=True, entry=_UNREAD):
    """`retain`: serve a cached file whatever its metadata says now; else only while the
    metadata still lists it (formats whose metadata lists files, VirtualSupport). `entry`: the
    live cache entry of `path` when the caller has just read it (None: there is none)."""
    now = timezone.now()
    key = path.cache_key
    if entry is _UNREAD:
        entry = live_entry(upstream, key)
    check = not retain and path.metadata is not None and fmt.virtual.metadata_lists_files
    if entry is not None and not force and is_fresh(entry, upstream, now):
        return _listed_hit(entry, upstream, fmt, path, now, check)
    if entry is None and _negative(upstream, key, now):
        return None
    with flight.single_flight(upstream.pk, key):
        if not force:  # another request may have stored it while this one waited
            entry = live_entry(upstream, key)
            if entry is not None and is_fresh(entry, upstream, timezone.now()):
                return _listed_hit(entry, upstream, fmt, path, now, check)
        return _fetch(upstream, fmt, path, entry, now)


def _fetch(upstream, fmt, path, entry, now):
    key = path.cache_key
    if getattr(upstream, "health_read_earlier", False):
        health.refresh(upstream)
        upstream.health_read_earlier = False
    if health.is_unhealthy(upstream, now):
        return _stale_or(entry, fmt, path, now, "upstream-unhealthy", UpstreamUnavailable())
    expected = None
    if path.metadata is not None:
        try:
            origin = _origin(upstream, fmt, path)
            if origin is None:
                return None
            url, expected = origin
            expected = {**expected, **fmt.virtual.promised_digests(path, _reader(upstream, fmt))}
        except UpstreamUnavailable:
            return _stale_or(entry, fmt, path, now, "upstream-error", UpstreamUnavailable())
    else:
        url = upstream_url(upstream, path.relative_path, path.url_path)
    conditional = {"Accept": path.accept} if path.accept else {}
    if entry is not None and entry.upstream_etag:
        conditional["If-None-Match"] = entry.upstream_etag
    if entry is not None and entry.upstream_last_modified:
        conditional["If-Modified-Since"] = entry.upstream_last_modified
    auth = http.credentials_header(upstream)
    try:
        response = http.request("GET", url, auth=auth, headers=conditional, auth_origin=upstream.url)
    except http.UpstreamUnavailable as exc:
        if not isinstance(exc, http.UpstreamBusy):  # Packhouse's own limit, not the upstream's fault
            health.failed(upstream, str(exc))
        reason = "upstream-timeout" if "Timeout" in str(exc) else "upstream-error"
        return _stale_or(entry, fmt, path, now, reason, UpstreamUnavailable())
    status = response.status
    if status == 304 and entry is not None:
        response.release()
        health.succeeded(upstream)
        CacheEntry.objects.filter(pk=entry.pk).update(upstream_checked_at=now)
        _entry_changed(upstream, entry.kind)
        entry.upstream_checked_at = now
        return _served_entry(entry, fmt, path, "REVALIDATED", now)
    if status in (404, 410):
        response.release()
        health.succeeded(upstream)
        if entry is not None:
            CacheEntry.objects.filter(pk=entry.pk).update(status=CacheEntry.Status.PENDING_DESTRUCTION)
            _entry_changed(upstream, entry.kind)
        _remember_missing(upstream, key, now)
        return None
    if status != 200:
        response.release()
        if status >= 500:
            health.failed(upstream, f"HTTP {status}")
        # An upstream 401/403 is Packhouse's credential failing: 502, never a 401 to the client.
        error = BadGateway(f"502 Bad Gateway - upstream {upstream.name} answered {status}")
        return _stale_or(entry, fmt, path, now, "upstream-error", error)
    health.succeeded(upstream)
    stored = _store(upstream, fmt, path, response, url, entry, now, expected)
    return _served_entry(stored, fmt, path, "MISS" if entry is None else "REVALIDATED", now)


def _entry_changed(upstream, kind):
    """A cache entry of `upstream` was stored, replaced, revalidated or dropped: the registries
    using it answer afresh (registry.virtual.changes). Released files (IMMUTABLE) are in no
    document a registry replays, so storing one (every first download) changes nothing."""
    if kind != FileKind.IMMUTABLE:
        changes.upstream_changed(upstream)


def _fetch_sidecar(upstream, auth):
    def fetch(relative_path):
        try:
            response = http.request("GET", upstream_url(upstream, relative_path), auth=auth)
        except http.UpstreamUnavailable:
            return None
        if response.status != 200:
            response.release()
            return None
        try:
            return http.read_small(response, SIDECAR_CAP)
        except (http.UpstreamTooLarge, http.UpstreamUnavailable):
            return None

    return fetch


def _verify(spool, expected, upstream, path):
    for algorithm, digest in expected.items():
        actual = spool.hexdigest(algorithm)
        if not hmac.compare_digest(actual, digest.lower()):
            events.integrity_failed(upstream, path, algorithm, digest, actual)
            logger.error(
                "virtual_registry_integrity_failure upstream=%s path=%s algorithm=%s expected=%s actual=%s",
                upstream.pk,
                path.relative_path,
                algorithm,
                digest,
                actual,
            )
            raise BadGateway("502 Upstream integrity check failed")


def _store(upstream, fmt, path, response, url, entry, now, expected=None):
    """Read, verify and store an upstream's 200 answer; the live CacheEntry for it."""
    cap = fmt.virtual.metadata_cap if path.kind == FileKind.METADATA else fmt.max_file_size
    try:
        spool = http.read_to_spool(response, cap)
    except http.UpstreamTooLarge as exc:
        raise BadGateway(f"502 Bad Gateway - {exc}") from exc
    except http.UpstreamUnavailable as exc:
        health.failed(upstream, str(exc))
        raise UpstreamUnavailable() from exc
    with spool:
        if expected is None:
            expected = fmt.virtual.expected_digests(
                path, response.headers, _fetch_sidecar(upstream, http.credentials_header(upstream))
            )
        _verify(spool, expected, upstream, path)
        fields = {
            "kind": path.kind,
            "content_type": response.header("content-type")[:255],
            "upstream_etag": response.header("etag")[:255],
            "upstream_last_modified": response.header("last-modified")[:64],
            "upstream_checked_at": now,
            "origin_url": url,
            "verified": bool(expected),
        }
        store = BlobStore()
        written = []
        try:
            with transaction.atomic():
                blob = store.ingest(spool, written)
                if entry is not None:
                    CacheEntry.objects.filter(pk=entry.pk).update(blob=blob, updated_at=now, **fields)
                    entry.refresh_from_db()
                    stored = entry
                else:
                    try:
                        with transaction.atomic():
                            stored = CacheEntry.objects.create(
                                upstream=upstream,
                                relative_path=path.cache_key,
                                path_digest=path_digest(path.cache_key),
                                blob=blob,
                                # Served at once (_fetch): counted here rather than by an
                                # UPDATE right after (_count_download finds it counted now).
                                downloads_count=1,
                                downloaded_at=now,
                                **fields,
                            )
                    except IntegrityError:  # a concurrent miss stored it first
                        stored = live_entry(upstream, path.cache_key)
                NegativeEntry.objects.filter(upstream=upstream, path_digest=path_digest(path.cache_key)).delete()
                _entry_changed(upstream, path.kind)
        except BaseException:
            store.discard_unreferenced(written)
            raise
    stored.blob = blob if stored.blob_id == blob.pk else stored.blob
    return stored
