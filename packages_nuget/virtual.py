"""NuGet v3 through virtual registries (spec §2.4, §3.1).

- A remote upstream's URL is its v3 service index: fetched (and revalidated) as metadata, and the
  addresses of its resources are read from it, never guessed: `PackageBaseAddress/3.0.0` (flat
  container: version lists, `.nupkg`, `.nuspec`) and `RegistrationsBaseUrl` (registrations).
- Registration indexes are served with every page inlined (a page the upstream left out is 502 for
  now) and every `@id` and `packageContent` rewritten to the virtual registry (packages_nuget.views);
  leaves are cut from the index.
- `.nupkg` and `.nuspec` bytes are served unchanged (signatures must still verify); registrations
  carry no hash, so they are cached unverified (their digests are recorded).
- Local upstreams answer with the project endpoint's documents (packages_nuget.renderers).
"""

import json

from packages_nuget import parsers, queries, renderers
from registry import services
from registry.errors import Invalid
from registry.formats import FileKind, VirtualPath, VirtualSupport

REGISTRATION_TYPES = (
    "RegistrationsBaseUrl/3.6.0",
    "RegistrationsBaseUrl/3.4.0",
    "RegistrationsBaseUrl/3.0.0-rc",
    "RegistrationsBaseUrl/3.0.0-beta",
    "RegistrationsBaseUrl",
)
FLAT_CONTAINER = "PackageBaseAddress/3.0.0"


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
        """Where a path is, by the upstream's service index (`document`)."""
        index = load(document)
        if index is None:
            return None
        section = path.relative_path.split("/")[1]
        if section == "registration":
            base = resource(index, REGISTRATION_TYPES)
        else:
            base = resource(index, (FLAT_CONTAINER,))
        if base is None:
            return None
        rest = path.relative_path.split("/", 2)[2]
        return f"{base}/{rest}", {}

    def content_type(self, path):
        if path.file_name.endswith(".nuspec"):
            return "text/plain; charset=utf-8"
        return "application/json" if path.kind == FileKind.METADATA else "application/octet-stream"

    def _entries(self, projects, path):
        return queries.entries(queries.versions(queries.packages(projects, path.name)))

    def local_file(self, projects, path):
        _, _, lower, normalized, file_name = path.relative_path.split("/")
        if file_name.endswith(".nuspec"):
            return None
        files = services.installable_files(projects, self.format, name=lower, version=normalized, file_name=file_name)
        return files.order_by("-id").first()

    def local_document(self, projects, path):
        section = path.relative_path.split("/")[1]
        if section not in ("registration", "flat"):
            return None
        entries = self._entries(projects, path)
        if not entries:
            return None
        if section == "flat":
            return renderers.flat_versions(entries).encode()
        return renderers.registration_index(path.name, entries, "", "/metadata").encode()
