"""Maven through virtual registries (spec §2.1, §3.1, §5.4): path classes, integrity, local files.

- `maven-metadata.xml` at every level is metadata (re-checked after the upstream's
  metadata_cache_validity_hours); files under a release version directory and timestamped
  snapshot files are immutable; other files under `*-SNAPSHOT/` (and paths outside the
  groupId/artifactId/version layout) are mutable (cache_validity_hours).
- Checksum files (`.md5`, `.sha1`, `.sha256`, `.sha512`) are answered by the core from the bytes of
  their base file, so they always match what this registry serves.
- Integrity: the upstream's `X-Checksum-Sha1` (or GCS's `x-goog-meta-checksum-sha1`) header, else
  its `.sha1` file; a mismatch caches nothing. Maven checksums are integrity, not authenticity.
- The claimed name of a path is its Package name (`com/example/my-app`), so a local package of
  that groupId/artifactId hides every remote version of it; a local upstream's
  `claimed_group_ids` (`com.acme.*`) hide every artifact of `com.acme` and its subgroups (spec §4.2).
- Pins (spec §4.3): a version directory (`groupId/artifactId/version`, its SNAPSHOT metadata
  too) is one unit: once a file of it was served from an upstream, the others come from there.
- Registry option `merge_maven_metadata` (off by default, GitLab's first-winner): artifact and
  plugin-group `maven-metadata.xml` merged from every upstream that has it (packages_maven.merge);
  version-level (SNAPSHOT) documents are never merged, they follow the pin.
- Local upstreams: artifact metadata generated from the live versions of the projects the caller
  may pull (as the group endpoint does); other metadata as uploaded.
"""

import re

from packages_maven import merge, parsers, renderers
from packages_maven.format import METADATA, VERSIONLESS
from packages_maven.views import content_type_for
from registry import services
from registry.errors import Invalid
from registry.formats import FileKind, VirtualPath, VirtualSupport
from registry.models import INSTALLABLE, Package, PackageVersion

TIMESTAMPED = re.compile(r"-\d{8}\.\d{6}-\d+")
SHA1_HEADERS = ("x-checksum-sha1", "x-goog-meta-checksum-sha1")


def _kind(maven_path):
    if maven_path.is_metadata:
        return FileKind.METADATA
    if maven_path.version.endswith("-SNAPSHOT") and not TIMESTAMPED.search(maven_path.base_name):
        return FileKind.MUTABLE
    return FileKind.IMMUTABLE


class MavenVirtualSupport(VirtualSupport):
    test_path = "/com/company/app/maven-metadata.xml"  # GitLab's probe
    public_roots = ("https://repo1.maven.org/maven2", "https://repo.maven.apache.org/maven2")
    default_metadata_cache_validity_hours = 24
    default_negative_cache_minutes = 10

    def parse(self, raw_path):
        try:
            maven_path = parsers.parse_path(raw_path)
        except Invalid:
            return self._unclassified(raw_path)
        if maven_path.checksum:
            base = self.parse(raw_path[: -len(maven_path.file_name)] + maven_path.base_name)
            return VirtualPath(
                relative_path="/" + raw_path,
                kind=base.kind,
                name=base.name,
                file_name=maven_path.file_name,
                checksum=maven_path.checksum,
                base=base,
            )
        return VirtualPath(
            relative_path="/" + raw_path,
            kind=_kind(maven_path),
            name=self.format.normalize_name(maven_path.name),
            file_name=maven_path.file_name,
        )

    def _unclassified(self, raw_path):
        """A path outside the groupId/artifactId/version layout (an archetype catalog at the
        root): mutable, named after its directory; still only safe segments."""
        segments = raw_path.split("/")
        if not all(parsers.SEGMENT.match(segment) for segment in segments):
            raise Invalid("400 Bad request - path is invalid")
        directory = "/".join(segments[:-1]) or segments[-1]
        return VirtualPath(relative_path="/" + raw_path, kind=FileKind.MUTABLE, name=directory, file_name=segments[-1])

    scope_claims = "claimed_group_ids"
    scope_claims_label = "Claimed group ids"
    scope_claims_help = "Groups whose every artifact comes only from local upstreams, e.g. com.acme.* (with subgroups)"

    def claim_keys(self, name):
        groups = name.rpartition("/")[0].split("/") if "/" in name else []
        return [name] + [".".join(groups[:end]) + ".*" for end in range(1, len(groups) + 1)]

    def scope_claim(self, value):
        """`com.acme.*` (the group and its subgroups), else ValueError."""
        text = value.strip() if isinstance(value, str) else ""
        stem = text[:-2] if text.endswith(".*") else ""
        if not stem or len(stem) > parsers.MAX_NAME or not all(parsers.SEGMENT.match(s) for s in stem.split(".")):
            raise ValueError(value)
        return f"{stem}.*"

    def is_scope_claim(self, claim):
        return claim.endswith(".*")

    rule_targets = ("group_id", "artifact_id", "version")

    def rule_values(self, path):
        try:
            maven_path = parsers.parse_path(path.relative_path[1:])
        except Invalid:
            return {}
        group_id, _, artifact_id = maven_path.name.rpartition("/")
        values = {"group_id": group_id.replace("/", "."), "artifact_id": artifact_id}
        if not maven_path.versionless:
            values["version"] = maven_path.version
        return values

    def expected_digests(self, path, headers, fetch_sidecar):
        for header in SHA1_HEADERS:
            value = headers.get(header, "").strip().lower()
            if re.fullmatch(r"[0-9a-f]{40}", value):
                return {"sha1": value}
        body = fetch_sidecar(path.relative_path + ".sha1")
        if body is None:
            return {}
        try:
            return {"sha1": parsers.parse_checksum(body, "sha1")}
        except Invalid:
            return {}

    def content_type(self, path):
        return content_type_for(path.file_name)

    def local_file(self, projects, path):
        maven_path = _maven_path(path)
        if maven_path is None:
            return None
        files = services.installable_files(
            projects, self.format, name=maven_path.name, version=maven_path.version, file_name=maven_path.base_name
        )
        return files.order_by("-created_at", "-id").first()

    def local_document(self, projects, path):
        maven_path = _maven_path(path)
        if maven_path is None:
            return None
        if maven_path.versionless:
            name = self.format.normalize_name(maven_path.name)
            packages = Package.objects.filter(project__in=projects, format=self.format.name, normalized_name=name)
            rows = (
                PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE)
                .exclude(version=VERSIONLESS)
                .order_by("created_at", "id")
                .values_list("version", "created_at")
            )
            published = {}
            for version, created_at in rows:  # one version in several projects: its newest publish
                published.pop(version, None)
                published[version] = created_at
            if published:
                return renderers.artifact_metadata(maven_path.name, list(published.items())).encode()
        package_file = self.local_file(projects, path)
        if package_file is None or package_file.blob.size > parsers.MAX_XML_SIZE:
            return None
        return services.read_small_file(package_file, parsers.MAX_XML_SIZE)

    registry_options = {"merge_maven_metadata": False}
    registry_option_labels = {
        "merge_maven_metadata": "Merge maven-metadata.xml from every upstream that has it (else the first one's)"
    }

    def pin_unit(self, path):
        maven_path = _maven_path(path)
        if maven_path is None or maven_path.versionless:
            return None
        return f"{self.format.normalize_name(maven_path.name)}/{maven_path.version}"

    def merges(self, path, options):
        if not options.get("merge_maven_metadata") or path.kind != FileKind.METADATA:
            return False
        maven_path = _maven_path(path)
        return maven_path is not None and maven_path.versionless

    def merge(self, documents):
        return merge.merge_metadata(documents)


def _maven_path(path):
    """The MavenPath of a VirtualPath, or None for a path outside the repository layout."""
    try:
        return parsers.parse_path(path.relative_path[1:])
    except Invalid:
        return None


__all__ = ["METADATA", "MavenVirtualSupport"]
