"""NuGet v3 through virtual registries (spec §2.4, §3.1).

- A remote upstream's URL is its v3 service index: fetched (and revalidated) as metadata, and the
  addresses of its resources are read from it, never guessed: `PackageBaseAddress/3.0.0` (flat
  container: version lists, `.nupkg`, `.nuspec`) and `RegistrationsBaseUrl` (registrations).
- Registration indexes are served with every page inlined and every `@id` and `packageContent`
  rewritten to the virtual registry (packages_nuget.views); leaves are cut from the index. A page
  the upstream did not inline (nuget.org's above 128 versions) is fetched from the same upstream
  as a document of its own (`/registration/<id>/page-<hash of its URL>.json`, found through the
  index; on the upstream's host or one of its file_hosts, cached and revalidated like the index),
  at most MAX_PAGES pages and metadata_cap bytes in all (spec §5.3).
- `.nupkg` and `.nuspec` bytes are served unchanged (signatures must still verify). A `.nupkg` is
  verified before it is cached against the `packageHash` (base64, `packageHashAlgorithm` SHA512)
  of its version's catalog entry (spec §5.4): inline in the registration (Packhouse's), else in the
  catalog leaf the entry's `@id` names when the upstream's service index lists a catalog
  (`Catalog/3.0.0`) under which it lies (nuget.org's). A mismatch is 502, nothing stored; no hash
  anywhere: cached unverified (its digests are recorded).
- Local upstreams answer with the project endpoint's documents (packages_nuget.renderers).
"""

import base64
import binascii
import hashlib
import json

from packages_nuget import parsers, queries, renderers
from registry import services
from registry.errors import BadGateway, Invalid
from registry.formats import FileKind, VirtualPath, VirtualSupport

REGISTRATION_TYPES = (
    "RegistrationsBaseUrl/3.6.0",
    "RegistrationsBaseUrl/3.4.0",
    "RegistrationsBaseUrl/3.0.0-rc",
    "RegistrationsBaseUrl/3.0.0-beta",
    "RegistrationsBaseUrl",
)
FLAT_CONTAINER = "PackageBaseAddress/3.0.0"
CATALOG = "Catalog/3.0.0"
MAX_PAGES = 200
# packageHashAlgorithm -> the digest the spool computes.
HASH_ALGORITHMS = {"sha512": "sha512", "sha256": "sha256"}


def url_key(url):
    """The cache key part for a document known by its URL."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def pages(registration):
    """The page objects of a registration index (dicts only)."""
    items = registration.get("items") if isinstance(registration, dict) else None
    return [page for page in items if isinstance(page, dict)] if isinstance(items, list) else []


def leaves(page):
    items = page.get("items")
    return [leaf for leaf in items if isinstance(leaf, dict)] if isinstance(items, list) else []


def leaf_version(leaf):
    entry = leaf.get("catalogEntry")
    version = entry.get("version") if isinstance(entry, dict) else None
    if not isinstance(version, str) or not parsers.valid_version(version):
        return None
    return parsers.normalize_version(version)


def load(data):
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def resource(service_index, types):
    """The `@id` of the first resource of one of `types` (in that preference), or None."""
    resources = service_index.get("resources") if isinstance(service_index, dict) else None
    if not isinstance(resources, list):
        return None
    for wanted in types:
        for item in resources:
            if isinstance(item, dict) and item.get("@type") == wanted and isinstance(item.get("@id"), str):
                return item["@id"].rstrip("/")
    return None


class NugetVirtualSupport(VirtualSupport):
    metadata_cap = 32 * 1024 * 1024
    default_metadata_cache_validity_hours = 1
    default_negative_cache_minutes = 2
    test_path = ""  # the service index itself
    public_roots = ("https://api.nuget.org",)

    def service_index_path(self):
        return VirtualPath(relative_path="/", kind=FileKind.METADATA, name="", file_name="index.json", url_path="")

    def _id(self, package_id):
        if not parsers.valid_name(package_id):
            raise Invalid("400 Bad request - package id is invalid")
        return package_id.lower()

    def registration_path(self, package_id):
        lower = self._id(package_id)
        return VirtualPath(
            relative_path=f"/registration/{lower}/index.json",
            kind=FileKind.METADATA,
            name=lower,
            file_name="index.json",
            metadata=self.service_index_path(),
        )

    def registration_page_path(self, lower, url):
        """A registration page the index `lower` names by URL only (not inlined)."""
        return VirtualPath(
            relative_path=f"/registration/{lower}/page-{url_key(url)}.json",
            kind=FileKind.METADATA,
            name=lower,
            file_name="page.json",
            metadata=self.registration_path(lower),
        )

    def catalog_leaf_path(self, lower, url, listed_in):
        """The catalog leaf at `url`, named by a catalog entry of `listed_in` (a registration
        index or page path)."""
        return VirtualPath(
            relative_path=f"/catalog/{lower}/{url_key(url)}.json",
            kind=FileKind.METADATA,
            name=lower,
            file_name="leaf.json",
            metadata=listed_in,
        )

    def versions_path(self, package_id):
        lower = self._id(package_id)
        return VirtualPath(
            relative_path=f"/flat/{lower}/index.json",
            kind=FileKind.METADATA,
            name=lower,
            file_name="index.json",
            metadata=self.service_index_path(),
        )

    def package_path(self, package_id, version, file_name):
        lower = self._id(package_id)
        if not parsers.valid_version(version):
            raise Invalid("400 Bad request - package version is invalid")
        normalized = parsers.normalize_version(version)
        stem, dot, extension = file_name.lower().rpartition(".")
        if (
            not dot
            or extension not in ("nupkg", "nuspec")
            or stem not in (f"{lower}.{version.lower()}", f"{lower}.{normalized}")
        ):
            raise Invalid("400 Bad request - file name is invalid")
        return VirtualPath(
            relative_path=f"/flat/{lower}/{normalized}/{lower}.{normalized}.{extension}",
            kind=FileKind.IMMUTABLE,
            name=lower,
            file_name=f"{lower}.{normalized}.{extension}",
            metadata=self.service_index_path(),
        )

    # Id prefixes a local upstream reserves, as nuget.org's prefix reservation: `Acme.*` claims
    # `Acme` and every id starting `Acme.` (spec §4.2).
    scope_claims = "claimed_prefixes"
    scope_claims_label = "Claimed id prefixes"
    scope_claims_help = "Id prefixes whose every package comes only from local upstreams, e.g. Acme.*"

    def claim_keys(self, name):
        parts = name.lower().split(".")
        return [name.lower()] + [".".join(parts[:end]) + ".*" for end in range(1, len(parts) + 1)]

    def scope_claim(self, value):
        """`Acme.*` -> `acme.*`, else ValueError."""
        text = value.strip() if isinstance(value, str) else ""
        stem = text.lower().removesuffix(".*") if text.endswith(".*") else ""
        if not stem or not parsers.valid_name(stem):
            raise ValueError(value)
        return f"{stem}.*"

    def is_scope_claim(self, claim):
        return claim.endswith(".*")

    rule_targets = ("id", "version")
    case_insensitive_targets = ("id", "version")

    def rule_values(self, path):
        values = {"id": path.name}
        parts = path.relative_path.split("/")
        if path.kind == FileKind.IMMUTABLE and len(parts) == 5:
            values["version"] = parts[3]
        return values

    def pin_unit(self, path):
        """A version's `.nupkg` and `.nuspec` come from one upstream (spec §4.3)."""
        parts = path.relative_path.split("/")
        if path.kind == FileKind.IMMUTABLE and len(parts) == 5 and parts[1] == "flat":
            return f"{parts[2]}/{parts[3]}"
        return None

    def parse(self, raw_path):
        parts = raw_path.split("/")
        if len(parts) == 4 and parts[0] == "download":
            return self.package_path(parts[1], parts[2], parts[3])
        raise Invalid("400 Bad request - path is invalid")

    def file_origin(self, path, document, upstream_url):
        """Where a path is: a page by its registration index, a catalog leaf by the index or page
        that lists it, anything else by the upstream's service index (`document`)."""
        index = load(document)
        if index is None:
            return None
        section = path.relative_path.split("/")[1]
        key = path.relative_path.rsplit("/", 1)[1].removeprefix("page-").removesuffix(".json")
        if section == "registration" and path.file_name == "page.json":
            urls = [page.get("@id") for page in pages(index)]
            return next(((url, {}) for url in urls if isinstance(url, str) and url_key(url) == key), None)
        if section == "catalog":  # listed in an index (pages of leaves) or in a page (leaves)
            for page in [index, *pages(index)]:
                for leaf in leaves(page):
                    url = _catalog_url(leaf)
                    if url is not None and url_key(url) == key:
                        return url, {}
            return None
        if section == "registration":
            base = resource(index, REGISTRATION_TYPES)
        else:
            base = resource(index, (FLAT_CONTAINER,))
        if base is None:
            return None
        rest = path.relative_path.split("/", 2)[2]
        return f"{base}/{rest}", {}

    def promised_digests(self, path, read):
        """The packageHash of a `.nupkg`'s catalog entry (see the module's docstring)."""
        parts = path.relative_path.split("/")
        if path.kind != FileKind.IMMUTABLE or len(parts) != 5 or not parts[4].endswith(".nupkg"):
            return {}
        lower, version = parts[2], parts[3]
        found = self._registration_leaf(lower, version, read)
        if found is None:
            return {}
        leaf, listed_in = found
        entry = leaf.get("catalogEntry")
        if isinstance(entry, dict) and "packageHash" in entry:
            return _package_hash(entry)
        url = _catalog_url(leaf)
        catalog = resource(load(read(self.service_index_path()) or b"") or {}, (CATALOG,))
        if url is None or catalog is None or not url.startswith(catalog.rsplit("/", 1)[0] + "/"):
            return {}
        catalog_leaf = load(read(self.catalog_leaf_path(lower, url, listed_in)) or b"")
        if catalog_leaf is None or "packageHash" not in catalog_leaf:
            return {}
        return _package_hash(catalog_leaf)

    def _registration_leaf(self, lower, version, read):
        """(leaf, path of the document listing it) of `version` in the upstream's registration,
        reading the pages it did not inline, or None."""
        index_path = self.registration_path(lower)
        index = load(read(index_path) or b"")
        for number, page in enumerate(pages(index)):
            listed_in = index_path
            if "items" not in page:
                if number >= MAX_PAGES or not isinstance(page.get("@id"), str):
                    return None
                if not _may_hold(page, version):
                    continue
                listed_in = self.registration_page_path(lower, page["@id"])
                page = load(read(listed_in) or b"") or {}
            for leaf in leaves(page):
                if leaf_version(leaf) == version:
                    return leaf, listed_in
        return None

    def content_type(self, path):
        if path.file_name.endswith(".nuspec"):
            return "text/plain; charset=utf-8"
        return "application/json" if path.kind == FileKind.METADATA else "application/octet-stream"

    def _entries(self, projects, path, with_files=False):
        return queries.entries(queries.versions(queries.packages(projects, path.name)), with_files=with_files)

    def local_file(self, projects, path):
        _, _, lower, normalized, file_name = path.relative_path.split("/")
        if file_name.endswith(".nuspec"):
            return None
        files = services.installable_files(projects, self.format, name=lower, version=normalized, file_name=file_name)
        return files.order_by("-id").first()

    def local_document(self, projects, path):
        section = path.relative_path.split("/")[1]
        if section not in ("registration", "flat") or path.file_name != "index.json":
            return None
        entries = self._entries(projects, path, with_files=section == "registration")  # packageHash
        if not entries:
            return None
        if section == "flat":
            return renderers.flat_versions(entries).encode()
        return renderers.registration_index(path.name, entries, "", "/metadata").encode()


def _catalog_url(leaf):
    """The URL of a registration leaf's catalog entry (an object with `@id`, or a bare URL)."""
    entry = leaf.get("catalogEntry")
    url = entry.get("@id") if isinstance(entry, dict) else entry
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _may_hold(page, version):
    """Whether a page's `lower`..`upper` range (when it says) includes `version`."""
    bounds = [page.get("lower"), page.get("upper")]
    if not all(isinstance(bound, str) and parsers.valid_version(bound) for bound in bounds):
        return True
    key = parsers.sort_key(version)
    return (
        parsers.sort_key(parsers.normalize_version(bounds[0]))
        <= key
        <= parsers.sort_key(parsers.normalize_version(bounds[1]))
    )


def _package_hash(entry):
    """{algorithm: hex} from a catalog entry's packageHash; a malformed one is 502."""
    algorithm = HASH_ALGORITHMS.get(str(entry.get("packageHashAlgorithm") or "SHA512").lower())
    value = entry.get("packageHash")
    try:
        digest = base64.b64decode(value, validate=True).hex() if isinstance(value, str) else ""
    except (binascii.Error, ValueError):
        digest = ""
    if algorithm is None or len(digest) != hashlib.new(algorithm).digest_size * 2:
        raise BadGateway("502 Bad Gateway - the upstream's packageHash is malformed")
    return {algorithm: digest}
