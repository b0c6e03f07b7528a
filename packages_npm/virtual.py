"""npm through virtual registries (spec §2.2, §3.1, §5.4): packuments and tarballs.

- A packument is metadata, fetched as the client asked for it: npm's abbreviated document
  (`Accept: application/vnd.npm.install-v1+json`) and the full one are cached apart.
- A tarball is only ever fetched through its packument (the abbreviated one, or the full one
  when only that is cached: `npm install` reads full packuments, `npm ci` none): the version
  whose `dist.tarball` ends in the requested file name gives the URL (on the upstream's own
  host) and the digests the bytes must have (`dist.integrity`'s sha512, else `dist.shasum`); a
  mismatch caches nothing.
- Local packuments are the project endpoint's documents (packages_npm.renderers). Every
  `dist.tarball` served is rewritten to the virtual registry (packages_npm.views) at serve time.
"""

import json
from urllib.parse import urljoin

from packages_npm import parsers, queries, renderers
from registry import services
from registry.errors import Invalid
from registry.formats import FileKind, VirtualPath, VirtualSupport
from registry.models import Package

CORGI = "application/vnd.npm.install-v1+json"
FULL = "application/json"
MAX_DEPTH = 64


def load_document(data):
    """A packument from bytes: a JSON object, or None when it is not one (or nested too deep)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def filter_versions(document, keep):
    """Drop the versions `keep(version)` refuses (spec §2.2): from `versions` and `time`, the
    dist-tags pointing at them, and a `latest` so dropped recomputed as the highest remaining
    release (no `latest` when only pre-releases remain). Returns whether any version is left
    (True when the document lists none to begin with)."""
    versions = document.get("versions")
    if not isinstance(versions, dict) or not versions:
        return True
    removed = {version for version in versions if not keep(version)}
    if not removed:
        return True
    for version in removed:
        del versions[version]
    times = document.get("time")
    if isinstance(times, dict):
        for version in removed:
            times.pop(version, None)
    tags = document.get("dist-tags")
    if isinstance(tags, dict):
        dropped = [tag for tag, version in tags.items() if version in removed]
        for tag in dropped:
            del tags[tag]
        if "latest" in dropped:
            releases = [version for version in versions if parsers.semver_key(version)[1] == 1]
            if releases:
                tags["latest"] = max(releases, key=parsers.semver_key)
    return bool(versions)


class NpmVirtualSupport(VirtualSupport):
    metadata_cap = 128 * 1024 * 1024
    default_metadata_cache_validity_hours = 1
    default_negative_cache_minutes = 2
    test_path = "/packhouse-connection-test"
    accepts_auth_token = True
    metadata_lists_files = True
    public_roots = ("https://registry.npmjs.org",)

    def packument_path(self, name, abbreviated):
        if not parsers.valid_name(name):
            raise Invalid("Package name is invalid.")
        return VirtualPath(
            relative_path=f"/{name}",
            kind=FileKind.METADATA,
            name=self.format.normalize_name(name),
            file_name=f"{parsers.basename(name)}.json",
            url_path="/" + name.replace("/", "%2f"),
            accept=CORGI if abbreviated else FULL,
            variant="abbreviated" if abbreviated else "",
        )

    def parse(self, raw_path):
        name, separator, file_name = raw_path.partition("/-/")
        if not separator:
            return self.packument_path(name, abbreviated=False)
        if not parsers.valid_name(name) or parsers.tarball_version(name, file_name) is None:
            raise Invalid("Package name is invalid.")
        basename = file_name.rsplit("/", 1)[-1]
        return VirtualPath(
            relative_path=f"/{name}/-/{basename}",
            kind=FileKind.IMMUTABLE,
            name=self.format.normalize_name(name),
            file_name=basename,
            metadata=self.packument_path(name, abbreviated=True),
            # `npm install` reads full packuments: a tarball's origin comes from the cached full
            # one then, without fetching the abbreviated one too.
            metadata_alternates=(self.packument_path(name, abbreviated=False),),
        )

    rule_targets = ("name", "scope", "version")
    case_insensitive_targets = ("scope",)

    def rule_values(self, path):
        values = {"name": path.name}
        scope = parsers.scope_of(path.name)
        if scope:
            values["scope"] = scope
        if path.kind == FileKind.IMMUTABLE:
            version = parsers.tarball_version(path.name, path.file_name)
            if version:
                values["version"] = version
        return values

    def claim_keys(self, name):
        """A scoped name is also hidden by a claim on its scope (`@acme`)."""
        scope = parsers.scope_of(name)
        return [name, f"@{scope}"] if scope else [name]

    def implicit_claims(self, group):
        """GitLab's npm naming rule: the top-level group's scope belongs to the group."""
        return [f"@{group.path.lower()}"]

    scope_claims = "claimed_scopes"
    scope_claims_label = "Claimed scopes"
    scope_claims_help = "Scopes whose every package comes only from local upstreams, e.g. @partner"

    def scope_claim(self, value):
        """`@partner` (or `partner`) -> `@partner`; a scope npm can address, else ValueError."""
        if not isinstance(value, str):
            raise ValueError(value)
        scope = value.strip().removeprefix("@")
        if not parsers.valid_name(f"@{scope}/x") or parsers.scope_of(f"@{scope}/x") != scope:
            raise ValueError(value)
        return f"@{scope}"

    def is_scope_claim(self, claim):
        return claim.startswith("@") and "/" not in claim

    def file_origin(self, path, document, upstream_url):
        document = load_document(document)
        versions = document.get("versions") if document else None
        if not isinstance(versions, dict):
            return None
        for entry in versions.values():
            dist = entry.get("dist") if isinstance(entry, dict) else None
            tarball = dist.get("tarball") if isinstance(dist, dict) else None
            if not isinstance(tarball, str) or tarball.rsplit("/", 1)[-1] != path.file_name:
                continue
            expected = {}
            try:
                sha512 = parsers.integrity_sha512_hex(dist.get("integrity"))
            except Invalid:
                sha512 = None
            shasum = dist.get("shasum")
            if sha512:
                expected["sha512"] = sha512
            elif isinstance(shasum, str) and len(shasum) == 40:
                expected["sha1"] = shasum.lower()
            return urljoin(upstream_url.rstrip("/") + "/", tarball), expected
        return None

    def content_type(self, path):
        return "application/json" if path.kind == FileKind.METADATA else "application/octet-stream"

    def local_file(self, projects, path):
        version = parsers.tarball_version(path.name, path.file_name)
        if version is None:
            return None
        files = services.installable_files(
            projects, self.format, name=path.name, version=version, file_name=parsers.tarball_name(path.name, version)
        )
        return files.order_by("-id").first()

    def local_document(self, projects, path):
        packages = Package.objects.filter(format=self.format.name, normalized_name=path.name, project__in=projects)
        rows = queries.file_rows(packages)
        if not rows:
            return None
        document = renderers.packument(path.name, rows, queries.tag_rows(packages), "")
        return json.dumps(document, separators=(",", ":")).encode()
