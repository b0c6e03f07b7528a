"""Pure parsing: a repository path -> what it addresses; XML and checksum bodies -> checked.

No ORM, no HTTP. Every error is registry.errors.Invalid (400).
"""

import re
from dataclasses import dataclass

import defusedxml.ElementTree
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError

from packages_maven.format import METADATA, VERSIONLESS
from registry.errors import Invalid

SEGMENT = re.compile(r"^[\w\-.]+\Z", re.ASCII)
FILE_NAME = re.compile(r"^[A-Za-z0-9._+-]+\Z")
VERSION = re.compile(r"^(?!.*\.\.)[\w+.-]+\Z", re.ASCII)
MAX_FILE_NAME = 5000
MAX_NAME = 255
MAX_VERSION = 255
# Checksum files: never stored; compared on PUT, computed from the stored bytes on GET.
CHECKSUMS = {".md5": "md5", ".sha1": "sha1", ".sha256": "sha256", ".sha512": "sha512"}
HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
# XML documents (poms, metadata) are parsed in memory: refuse absurd ones.
MAX_XML_SIZE = 10 * 1024 * 1024


@dataclass(frozen=True)
class MavenPath:
    name: str  # groupId/artifactId path, e.g. com/example/my-app (or the full path if versionless)
    version: str  # last path segment, or VERSIONLESS
    file_name: str  # the requested file name
    base_name: str  # the file the request is about: file_name without a checksum extension
    checksum: str | None  # "md5" | "sha1" | "sha256" | "sha512" for a checksum file

    @property
    def versionless(self):
        return self.version == VERSIONLESS

    @property
    def is_metadata(self):
        return self.base_name == METADATA


def _invalid(what="path"):
    return Invalid(f"400 Bad request - {what} is invalid")


def valid_name(name):
    """A package name as parse_path builds it: `groupId/artifactId` segments (or the path of
    versionless metadata), none relative, at most MAX_NAME characters."""
    if not name or len(name) > MAX_NAME:
        return False
    return all(segment not in (".", "..") and SEGMENT.match(segment) for segment in name.split("/"))


def parse_path(raw):
    """`com/example/my-app/1.0/my-app-1.0.jar` -> MavenPath; strict, nothing relative."""
    if not raw:
        raise _invalid()
    segments = raw.split("/")
    file_name = segments.pop()
    if file_name in ("", ".", "..") or len(file_name) > MAX_FILE_NAME or not FILE_NAME.match(file_name):
        raise _invalid("file_name")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise _invalid()
    checksum, base_name = None, file_name
    for extension, algorithm in CHECKSUMS.items():
        if file_name.endswith(extension) and len(file_name) > len(extension):
            checksum, base_name = algorithm, file_name[: -len(extension)]
            break
    snapshot_level = bool(segments) and segments[-1].endswith("-SNAPSHOT")
    if base_name == METADATA and not snapshot_level:
        name_segments, version = segments, VERSIONLESS
        if not name_segments:
            raise _invalid()
    else:
        if len(segments) < 2:
            raise _invalid()
        name_segments, version = segments[:-1], segments[-1]
        if len(version) > MAX_VERSION or not VERSION.match(version):
            raise _invalid("version")
    if not all(SEGMENT.match(segment) for segment in name_segments):
        raise _invalid()
    name = "/".join(name_segments)
    if len(name) > MAX_NAME:
        raise _invalid()
    return MavenPath(name=name, version=version, file_name=file_name, base_name=base_name, checksum=checksum)


def check_xml(data, root_tag, what):
    """Well-formed XML with the expected root, parsed with DTDs and entities forbidden
    (no XXE, no billion laughs)."""
    if len(data) > MAX_XML_SIZE:
        raise Invalid(f"400 Bad request - {what} is too large to be parsed")
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise Invalid(f"400 Bad request - {what} is not valid XML ({exc.__class__.__name__})") from exc
    if root.tag.rsplit("}", 1)[-1] != root_tag:
        raise Invalid(f"400 Bad request - {what} must have a <{root_tag}> root element")
    return root


def parse_checksum(data, algorithm):
    """A checksum file's body: the hex digest, optionally followed by a file name."""
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise Invalid("400 Bad request - checksum is invalid") from exc
    digest = text.split()[0].lower() if text else ""
    if len(digest) != HEX_LENGTH[algorithm] or not re.fullmatch(r"[0-9a-f]+", digest):
        raise Invalid("400 Bad request - checksum is invalid")
    return digest


def artifact_coordinates(name):
    """`com/example/my-app` -> ("com.example", "my-app")."""
    group_path, _, artifact_id = name.rpartition("/")
    return group_path.replace("/", "."), artifact_id


def listed_versions(data):
    """An artifact-level maven-metadata.xml -> (versions, latest, release), the versions a set
    and latest/release None when absent; None when the document is not such a metadata."""
    try:
        root = check_xml(data, "metadata", "maven-metadata.xml")
    except Invalid:
        return None

    def local(element):
        return element.tag.rsplit("}", 1)[-1]

    versioning = next((child for child in root if local(child) == "versioning"), None)
    if versioning is None:
        return None
    fields = {local(child): child for child in versioning}
    versions_element = fields.get("versions")
    if versions_element is None:
        return None
    versions = {(v.text or "").strip() for v in versions_element if local(v) == "version"}

    def text(name):
        element = fields.get(name)
        return (element.text or "").strip() or None if element is not None else None

    return versions, text("latest"), text("release")
