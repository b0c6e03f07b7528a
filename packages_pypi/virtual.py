"""PyPI through virtual registries (spec §2.3, §3.1, §5.4).

- A project page is metadata: fetched from the upstream's simple base (`<url>/<name>/`, PEP 691
  JSON preferred, PEP 503 HTML accepted), stored as the upstream sent it, and always re-rendered
  here (never passed through: no upstream HTML reaches a client) as HTML or JSON, whichever the
  client negotiates.
- Each file is reached through its page: `files/<project>/<key>/<filename>`, where `key` is the
  sha256 the page declared, or `h-<sha256 of the link as written>` when it declared none. The
  declared hashes are what the bytes must match (a mismatch caches nothing). `.metadata` (PEP
  658/714) files likewise, against the page's core-metadata hash.
- Kept per file: hashes, requires-python, yanked (with its reason), core-metadata, size and
  upload time when given.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urljoin, urlsplit

from packaging.utils import canonicalize_name

from packages_pypi import parsers, queries, renderers
from registry import services
from registry.errors import Invalid
from registry.formats import FileKind, VirtualPath, VirtualSupport
from registry.models import Package

UPSTREAM_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?\Z")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}\Z")


@dataclass
class DistributionFile:
    filename: str
    href: str  # as the page wrote it
    hashes: dict = field(default_factory=dict)
    requires_python: str = ""
    yanked: object = False  # False, True, or the reason
    core_metadata: object = False  # False, True, or {"sha256": ...}
    size: int | None = None
    upload_time: str | None = None

    @property
    def key(self):
        sha256 = self.hashes.get("sha256", "")
        if SHA256.match(sha256):
            return sha256
        return "h-" + hashlib.sha256(self.href.encode()).hexdigest()


def _metadata_value(value):
    """A `data-core-metadata` attribute or JSON value -> False, True or {"algorithm": hex}."""
    if value is None or value is False:
        return False
    if value is True or value == "true":
        return True
    if isinstance(value, dict):
        return {k: v.lower() for k, v in value.items() if isinstance(k, str) and isinstance(v, str)} or True
    if isinstance(value, str) and "=" in value:
        algorithm, _, digest = value.partition("=")
        return {algorithm: digest.lower()}
    return True


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._current = [dict(attrs), ""]

    def handle_data(self, data):
        if self._current is not None:
            self._current[1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._current is not None:
            self.anchors.append(self._current)
            self._current = None


def _from_html(text):
    parser = _Anchors()
    parser.feed(text)
    files = []
    for attrs, label in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, _, fragment = href.partition("#")
        hashes = {}
        if "=" in fragment:
            algorithm, _, digest = fragment.partition("=")
            hashes[algorithm.lower()] = digest.lower()
        filename = label.strip() or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        yanked = attrs["data-yanked"] or True if "data-yanked" in attrs else False
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        files.append(
            DistributionFile(
                filename=filename,
                href=url,
                hashes=hashes,
                requires_python=attrs.get("data-requires-python") or "",
                yanked=yanked,
                core_metadata=_metadata_value(metadata),
            )
        )
    return files


def _from_json(document):
    files = []
    for entry in document.get("files", []) if isinstance(document.get("files"), list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        hashes = entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {}
        size = entry.get("size")
        files.append(
            DistributionFile(
                filename=str(entry.get("filename") or unquote(urlsplit(entry["url"]).path.rsplit("/", 1)[-1])),
                href=entry["url"],
                hashes={k.lower(): v.lower() for k, v in hashes.items() if isinstance(k, str) and isinstance(v, str)},
                requires_python=entry.get("requires-python") or "",
                yanked=entry.get("yanked") or False,
                core_metadata=_metadata_value(entry.get("core-metadata", entry.get("dist-info-metadata"))),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                upload_time=entry.get("upload-time") if isinstance(entry.get("upload-time"), str) else None,
            )
        )
    return files


def parse_page(data):
    """The files an upstream's project page (JSON or HTML bytes) lists; [] for anything else."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            return []
        return _from_json(document) if isinstance(document, dict) else []
    return _from_html(text)


def _file_url(files_base, name, distribution):
    return f"{files_base}/{name}/{distribution.key}/{quote(distribution.filename)}"


def render_html(name, files, files_base):
    anchors = []
    for distribution in files:
        url = _file_url(files_base, name, distribution)
        fragment = f"#sha256={distribution.hashes['sha256']}" if "sha256" in distribution.hashes else ""
        attributes = ""
        if distribution.requires_python:
            attributes += f' data-requires-python="{escape(distribution.requires_python)}"'
        if distribution.yanked:
            reason = distribution.yanked if isinstance(distribution.yanked, str) else ""
            attributes += f' data-yanked="{escape(reason)}"'
        if distribution.core_metadata:
            value = "true"
            if isinstance(distribution.core_metadata, dict) and "sha256" in distribution.core_metadata:
                value = f"sha256={distribution.core_metadata['sha256']}"
            attributes += f' data-dist-info-metadata="{escape(value)}" data-core-metadata="{escape(value)}"'
        anchors.append(f'<a href="{escape(url + fragment)}"{attributes}>{escape(distribution.filename)}</a>')
    return renderers.page(name, anchors)


def render_json(name, files, files_base):
    entries = []
    for distribution in files:
        entry = {
            "filename": distribution.filename,
            "url": _file_url(files_base, name, distribution),
            "hashes": distribution.hashes,
            "core-metadata": distribution.core_metadata,
            "dist-info-metadata": distribution.core_metadata,
            "yanked": distribution.yanked,
        }
        if distribution.requires_python:
            entry["requires-python"] = distribution.requires_python
        if distribution.size is not None:
            entry["size"] = distribution.size
        if distribution.upload_time:
            entry["upload-time"] = distribution.upload_time
        entries.append(entry)
    sized = bool(files) and all(distribution.size is not None for distribution in files)
    document = {"meta": {"api-version": "1.1" if sized else "1.0"}, "name": name, "files": entries}
    if sized:
        versions = []
        for distribution in files:
            version = _version_of(name, distribution.filename)
            if version and version not in versions:
                versions.append(version)
        document["versions"] = versions
    return json.dumps(document, separators=(",", ":"))


def _version_of(name, filename):
    stem = filename.split("-", 2)
    return stem[1] if len(stem) >= 2 else ""


class PypiVirtualSupport(VirtualSupport):
    metadata_cap = 32 * 1024 * 1024
    default_metadata_cache_validity_hours = 1
    default_negative_cache_minutes = 2
    test_path = "/packhouse-connection-test/"
    metadata_lists_files = True
    public_roots = ("https://pypi.org/simple",)
    file_host_presets = {"https://pypi.org/simple": ("files.pythonhosted.org",)}

    def project_path(self, name):
        if not NAME.match(name or ""):
            raise Invalid("400 Bad request - package_name is invalid")
        normalized = canonicalize_name(name)
        return VirtualPath(
            relative_path=f"/{normalized}/",
            kind=FileKind.METADATA,
            name=normalized,
            file_name="index.html",
            accept=UPSTREAM_ACCEPT,
        )

    def file_path(self, name, key, filename):
        if not (SHA256.match(key) or (key.startswith("h-") and SHA256.match(key[2:]))):
            raise Invalid("400 Bad request - the file key is invalid")
        if not FILE_NAME.match(filename):
            raise Invalid("400 Bad request - file_name is invalid")
        page = self.project_path(name)
        return VirtualPath(
            relative_path=f"/files/{page.name}/{key}/{filename}",
            kind=FileKind.IMMUTABLE,
            name=page.name,
            file_name=filename,
            metadata=page,
        )

    case_insensitive_targets = ("name", "version")

    def version_of(self, filename):
        """The version a distribution's file name carries, or None."""
        try:
            _, _, version = parsers.parse_file_name(filename.removesuffix(".metadata"))
        except Invalid:
            return None
        return str(version)

    def rule_values(self, path):
        values = {"name": path.name}
        if path.kind == FileKind.IMMUTABLE:
            version = self.version_of(path.file_name)
            if version is not None:
                values["version"] = version
        return values

    def parse(self, raw_path):
        parts = raw_path.split("/")
        if len(parts) == 4 and parts[0] == "files":
            return self.file_path(parts[1], parts[2], parts[3])
        raise Invalid("400 Bad request - path is invalid")

    def file_origin(self, path, document, upstream_url):
        key = path.relative_path.split("/")[3]
        wanted = path.file_name.removesuffix(".metadata") if path.file_name.endswith(".metadata") else path.file_name
        page_url = upstream_url.rstrip("/") + path.metadata.relative_path
        for distribution in parse_page(document):
            if distribution.filename != wanted or distribution.key != key:
                continue
            url = urljoin(page_url, distribution.href)
            if wanted != path.file_name:  # the PEP 658 metadata file
                if not distribution.core_metadata:
                    return None
                digests = distribution.core_metadata if isinstance(distribution.core_metadata, dict) else {}
                return url + ".metadata", _checkable(digests)
            return url, _checkable(distribution.hashes)
        return None

    def content_type(self, path):
        if path.kind == FileKind.METADATA:
            return "application/octet-stream"
        return "text/plain" if path.file_name.endswith(".metadata") else "application/octet-stream"

    def local_file(self, projects, path):
        key = path.relative_path.split("/")[3]
        if not SHA256.match(key):
            return None
        files = services.installable_files(projects, self.format, name=path.name, file_name=path.file_name)
        return files.filter(blob__sha256=key).order_by("-id").first()

    def local_content(self, projects, path):
        """A local wheel's PEP 658 core metadata, `<file>.metadata`, as it was uploaded."""
        key = path.relative_path.split("/")[3]
        if not path.file_name.endswith(".metadata") or not SHA256.match(key):
            return None
        files = services.installable_files(
            projects, self.format, name=path.name, file_name=path.file_name.removesuffix(".metadata")
        )
        found = files.filter(blob__sha256=key).select_related("pypi_distribution").order_by("-id").first()
        distribution = getattr(found, "pypi_distribution", None) if found is not None else None
        if distribution is None or not distribution.core_metadata_sha256:
            return None
        return distribution.core_metadata.encode("utf-8")

    def local_document(self, projects, path):
        """The project's files as a PEP 691 page, with the wheels' core metadata (PEP 658/714)."""
        packages = Package.objects.filter(format=self.format.name, normalized_name=path.name, project__in=projects)
        links = renderers.distribution_links(queries.distribution_rows(packages), "")
        if not links:
            return None
        files = [
            {
                "filename": link.filename,
                "url": link.url,
                "hashes": {"sha256": link.sha256},
                "requires-python": link.requires_python,
                "size": link.size,
                "upload-time": link.upload_time,
                "core-metadata": {"sha256": link.core_metadata_sha256} if link.core_metadata_sha256 else False,
                **({"yanked": link.yanked or True} if link.yanked is not None else {}),
            }
            for link in links
        ]
        return json.dumps({"meta": {"api-version": "1.1"}, "name": path.name, "files": files}).encode()


def _checkable(digests):
    return {algorithm: digest for algorithm, digest in digests.items() if algorithm in hashlib.algorithms_guaranteed}
