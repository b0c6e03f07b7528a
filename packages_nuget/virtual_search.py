"""NuGet search through a virtual registry (spec §2.4 `query`).

- Local upstreams first, in position order: what the caller may pull of their targets, as the
  project endpoint searches it (listed versions only, prerelease as asked); an id found in an
  earlier local upstream is not repeated.
- Then the first remote upstream whose service index offers a `SearchQueryService`: its results
  for the same query, less the ids local results hold, the ids local upstreams of the registry
  claim (names and `Acme.*` prefixes), and the ids that upstream's rules deny. Its search must be
  on the upstream's host or one of its `file_hosts` (nuget.org's is on azuresearch-*.nuget.org),
  else it is not asked; the upstream's credentials go to its own host only.
- Every URL that leads to package metadata points at the virtual registry.
- Paging runs over local results, then remote ones: the remote is asked for its results from
  the first, in batches, until the page is full after filtering (at most MAX_TAKE read), and the
  page is cut from the combination; `totalHits` is local plus the remote's count less what the
  filtering removed from the results read.
- The remote's raw answers are cached CACHE_SECONDS per (upstream, query); they depend on no
  caller. A remote that fails leaves local results only, and says so in
  `X-Packhouse-Search-Incomplete` (search is no resolution: nothing falls through).
"""

import hashlib
import json
from urllib.parse import urlencode

from django.core.cache import caches

from packages_nuget import parsers, queries, renderers
from packages_nuget import virtual as nuget_virtual
from registry.errors import BadGateway, UpstreamUnavailable
from registry.virtual import addresses, http, resolver, rules
from registry.virtual.models import NameClaim, UpstreamRule

SEARCH_TYPES = (
    "SearchQueryService/3.5.0",
    "SearchQueryService/3.0.0-rc",
    "SearchQueryService/3.0.0-beta",
    "SearchQueryService",
)
MAX_TAKE = 1000
BATCH = 20  # asked of the remote beyond what the page needs, for what filtering removes
CACHE_SECONDS = 300
SEARCH_CAP = 8 * 1024 * 1024


class Query:
    def __init__(self, params):
        self.term = (params.get("q") or "").strip()
        self.skip = parsers.int_param(params.get("skip"), "skip", 0, 0)
        self.take = min(parsers.int_param(params.get("take"), "take", 20, 1), MAX_TAKE)
        self.prerelease = (params.get("prerelease") or "true").lower() != "false"
        self.semver_level = (params.get("semVerLevel") or "2.0.0")[:16]


def search(registry, principal, fmt, params, base):
    """(document, incomplete reason or None) for one search through `registry`."""
    query = Query(params)
    upstreams = [link.upstream for link in resolver.links_of(registry)]
    local = [upstream for upstream in upstreams if upstream.is_local]
    groups = _local_groups(local, principal, query)
    local_data = json.loads(renderers.search(sorted(groups.items()), len(groups), "", f"{base}/metadata"))["data"]
    kept, remote_total, removed, incomplete = [], 0, 0, None
    remote = [upstream for upstream in upstreams if not upstream.is_local]
    if remote:
        need = max(0, query.skip + query.take - len(local_data))
        try:
            kept, remote_total, removed = _remote(remote, fmt, query, need, local, set(groups))
        except (UpstreamUnavailable, BadGateway, http.UpstreamUnavailable, http.UpstreamTooLarge):
            incomplete = "upstream-error"
    for item in kept:
        _rewrite(item, base)
    combined = local_data + kept
    total = len(local_data) + max(remote_total - removed, len(kept))
    return {"totalHits": total, "data": combined[query.skip : query.skip + query.take]}, incomplete


def _local_groups(local, principal, query):
    """{lower id: [Entry]} of the local upstreams' matches (the first upstream holding an id)."""
    groups = {}
    for upstream in local:
        projects = resolver.local_projects(upstream, principal)
        if not projects:
            continue
        packages = queries.with_installable_versions(queries.matching(queries.packages(projects), query.term))
        found = {}
        for entry in queries.entries(queries.versions(packages)):
            if not entry.listed or (not query.prerelease and parsers.is_prerelease(entry.normalized)):
                continue
            found.setdefault(entry.name.lower(), []).append(entry)
        for name, entries in found.items():
            groups.setdefault(name, entries)
    return groups


def _remote(remote, fmt, query, need, local, local_ids):
    """(kept results, the upstream's totalHits, results filtered out) of the first remote upstream
    offering search, asked in batches from its first result until `need` results are kept, it has
    no more, or MAX_TAKE were read."""
    for upstream in remote:
        served = resolver.fetch_from(upstream, fmt, fmt.virtual.service_index_path())
        index = nuget_virtual.load(served.read(fmt.virtual.metadata_cap)) if served is not None else None
        url = nuget_virtual.resource(index or {}, SEARCH_TYPES)
        if url is None:
            continue
        if not addresses.same_host(url, upstream.url, upstream.file_hosts):
            return [], 0, 0
        batch = min(need + BATCH, MAX_TAKE)
        kept, removed, offset, total = [], 0, 0, 0
        while True:
            arguments = {
                "q": query.term,
                "skip": offset,
                "take": batch,
                "prerelease": "true" if query.prerelease else "false",
                "semVerLevel": query.semver_level,
            }
            document = nuget_virtual.load(_fetch(upstream, f"{url}?{urlencode(arguments)}") or b"")
            data = document.get("data") if document else None
            if not isinstance(data, list):
                raise BadGateway("502 Bad Gateway - the upstream's search answer is malformed")
            data = [item for item in data if isinstance(item, dict)]
            total = document.get("totalHits") if isinstance(document.get("totalHits"), int) else len(data)
            found = _filter(data, upstream, local, local_ids, fmt)
            kept += found
            removed += len(data) - len(found)
            offset += len(data)
            if len(kept) >= need or len(data) < batch or offset >= MAX_TAKE:
                return kept, total, removed
    return [], 0, 0


def _fetch(upstream, url):
    key = "virtual-nuget-search:" + hashlib.sha256(f"{upstream.pk}|{upstream.updated_at}|{url}".encode()).hexdigest()
    cache = caches["default"]
    cached = cache.get(key)
    if cached is not None:
        return cached
    response = http.request(
        "GET",
        url,
        auth=http.credentials_header(upstream),
        headers={"Accept": "application/json"},
        auth_origin=upstream.url,
    )
    if response.status != 200:
        response.release()
        raise BadGateway(f"502 Bad Gateway - upstream {upstream.name} answered {response.status}")
    data = http.read_small(response, SEARCH_CAP)
    cache.set(key, data, CACHE_SECONDS)
    return data


def _filter(data, searched, local, local_ids, fmt):
    """The results of remote upstream `searched` that no local result, claim or rule hides."""
    ids = {}
    for item in data:
        package_id = item.get("id")
        if isinstance(package_id, str) and parsers.valid_name(package_id):
            ids[id(item)] = package_id.lower()
    keys = {key for name in ids.values() for key in fmt.virtual.claim_keys(name)}
    claimed = set(NameClaim.objects.filter(upstream__in=local, name__in=keys).values_list("name", flat=True))
    upstream_rules = list(UpstreamRule.objects.filter(upstream=searched).order_by("id"))
    kept = []
    for item in data:
        name = ids.get(id(item))
        if name is None or name in local_ids or claimed.intersection(fmt.virtual.claim_keys(name)):
            continue
        if not rules.allowed(upstream_rules, {"id": name}, fmt.virtual):
            continue
        kept.append(item)
    return kept


def _rewrite(item, base):
    lower = item["id"].lower()
    registration = f"{base}/metadata/{lower}/index.json"
    item["@id"] = item["registration"] = registration
    versions = item.get("versions")
    for version in versions if isinstance(versions, list) else ():
        value = version.get("version") if isinstance(version, dict) else None
        if isinstance(value, str) and parsers.valid_version(value):
            version["@id"] = f"{base}/metadata/{lower}/{parsers.normalize_version(value)}.json"
