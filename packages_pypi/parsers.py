"""Pure functions for PyPI uploads: file names, core metadata, the upload form. No ORM, no HTTP.

Every function raises registry.errors.Invalid (a 400 for twine) on bad input.
"""

import hashlib
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

from packaging.metadata import parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from registry import archives
from registry.errors import Invalid
from registry.formats import PackageDraft

WHEEL = "bdist_wheel"
SDIST = "sdist"

# PEP 508 / core metadata `Name`.
NAME_PATTERN = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE | re.ASCII)
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*\Z")
MAX_FILE_NAME = 255
# Guards against hostile archives.
MAX_METADATA_SIZE = 1024 * 1024
MAX_MEMBERS = 100_000
MAX_TOTAL_UNCOMPRESSED = 16 * 1024 * 1024 * 1024
# Stored form fields are truncated, not refused (GitLab's behaviour).
TRUNCATE = {
    "summary": 255,
    "description": 4000,
    "description_content_type": 255,
    "keywords": 255,
    "author_email": 255,
    "metadata_version": 16,
}


def parse_version(value, what="version"):
    try:
        return Version(value)
    except (InvalidVersion, TypeError) as exc:
        raise Invalid(f"400 Bad request - {what} is invalid") from exc


def parse_requires_python(value):
    value = (value or "").strip()
    if not value:
        return ""
    if len(value) > 255:
        raise Invalid("400 Bad request - requires_python is invalid")
    try:
        SpecifierSet(value)
    except InvalidSpecifier as exc:
        raise Invalid("400 Bad request - requires_python is invalid") from exc
    return value


def parse_file_name(file_name):
    """(kind, canonical name, Version) of a wheel or sdist file name."""
    if not file_name or len(file_name) > MAX_FILE_NAME or not FILE_NAME_PATTERN.match(file_name) or ".." in file_name:
        raise Invalid("400 Bad request - file name is invalid")
    try:
        if file_name.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(file_name)
            return WHEEL, name, version
        if file_name.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(file_name)
            return SDIST, name, version
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise Invalid(f"400 Bad request - invalid distribution file name: {exc}") from exc
    raise Invalid("400 Bad request - only wheels (.whl) and source distributions (.tar.gz, .zip) are accepted")


def _unsafe_member(name):
    """A member name that is absolute, climbs out, or uses another platform's separators."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return True
    parts = name.split("/")
    return ".." in parts or (len(parts[0]) >= 2 and parts[0][1] == ":")


def _read_limited(handle, declared_size):
    if declared_size > MAX_METADATA_SIZE:
        raise Invalid("400 Bad request - core metadata file is too large")
    data = handle.read(MAX_METADATA_SIZE + 1)
    if len(data) > MAX_METADATA_SIZE:
        raise Invalid("400 Bad request - core metadata file is too large")
    return data


def _zip_metadata(path, pattern, what, max_file_size=0):
    """The bytes of the one member matching `pattern` in a zip, after checking every name."""
    if not zipfile.is_zipfile(path):
        raise Invalid(f"400 Bad request - {what} is not a valid zip archive")
    try:
        with archives.open_zip(
            path,
            what,
            max_bytes=archives.budget_for(max_file_size),
            unreadable=f"400 Bad request - {what} is not a readable zip archive",
        ) as archive:
            infos = archive.members
            if len(infos) > MAX_MEMBERS:
                raise Invalid(f"400 Bad request - {what} has too many members")
            total = 0
            found = []
            for info in infos:
                if _unsafe_member(info.filename):
                    raise Invalid(f"400 Bad request - {what} contains an unsafe path: {info.filename!r}")
                total += info.file_size
                if pattern.match(info.filename) and not info.is_dir():
                    found.append(info)
            if total > MAX_TOTAL_UNCOMPRESSED:
                raise Invalid(f"400 Bad request - {what} is too large when uncompressed")
            if len(found) != 1:
                raise Invalid(f"400 Bad request - {what} must contain exactly one core metadata file")
            with archive.open(found[0]) as handle:
                return _read_limited(handle, found[0].file_size)
    except Invalid:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, EOFError, OSError) as exc:
        raise Invalid(f"400 Bad request - {what} is not a readable zip archive") from exc
    except (ValueError, zlib.error) as exc:
        raise Invalid(f"400 Bad request - {what} is not a readable zip archive") from exc


WHEEL_METADATA = re.compile(r"^[^/]+\.dist-info/METADATA$")
SDIST_METADATA = re.compile(r"^[^/]+/PKG-INFO$")


def _tar_metadata(path, max_file_size=0):
    what = "source distribution"
    try:
        with archives.open_tar(
            path,
            what,
            max_bytes=archives.budget_for(max_file_size),
            unreadable=f"400 Bad request - {what} is not a readable .tar.gz archive",
        ) as archive:
            found = None
            count = 0
            total = 0
            for member in archive:
                count += 1
                total += max(member.size, 0)
                if count > MAX_MEMBERS:
                    raise Invalid(f"400 Bad request - {what} has too many members")
                if total > MAX_TOTAL_UNCOMPRESSED:
                    raise Invalid(f"400 Bad request - {what} is too large when uncompressed")
                if _unsafe_member(member.name.rstrip("/")):
                    raise Invalid(f"400 Bad request - {what} contains an unsafe path: {member.name!r}")
                try:  # absolute or escaping links, devices, fifos...
                    tarfile.data_filter(member, "/sdist")
                except tarfile.FilterError as exc:
                    raise Invalid(f"400 Bad request - {what} contains an unsafe member: {member.name!r}") from exc
                if SDIST_METADATA.match(member.name):
                    if found is not None or not member.isfile():
                        raise Invalid(f"400 Bad request - {what} must contain exactly one PKG-INFO")
                    handle = archive.extractfile(member)
                    found = _read_limited(handle, member.size)
            if found is None:
                raise Invalid(f"400 Bad request - {what} must contain exactly one PKG-INFO")
            return found
    except Invalid:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise Invalid(f"400 Bad request - {what} is not a readable .tar.gz archive") from exc


def read_core_metadata(path, kind, file_name, max_file_size=0):
    """The raw core metadata of a distribution on disk: wheel METADATA or sdist PKG-INFO, read
    under registry.archives' decompression budget for `max_file_size` (0: none known)."""
    if kind == WHEEL:
        return _zip_metadata(path, WHEEL_METADATA, "wheel", max_file_size)
    if file_name.endswith(".zip"):
        return _zip_metadata(path, SDIST_METADATA, "source distribution", max_file_size)
    return _tar_metadata(path, max_file_size)


@dataclass
class CoreMetadata:
    name: str
    version: Version
    requires_python: str
    summary: str
    text: str
    sha256: str


def parse_core_metadata(data):
    """Parse METADATA / PKG-INFO bytes (UTF-8, RFC 822 style) into the fields we check and store."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("400 Bad request - core metadata is not valid UTF-8") from exc
    if "\x00" in text:
        raise Invalid("400 Bad request - core metadata contains NUL bytes")
    raw, _unparsed = parse_email(text)
    name = raw.get("name")
    version = raw.get("version")
    if not name or not version:
        raise Invalid("400 Bad request - core metadata has no Name or no Version")
    if not NAME_PATTERN.match(name):
        raise Invalid("400 Bad request - core metadata Name is invalid")
    requires_python = raw.get("requires_python") or ""
    try:
        requires_python = parse_requires_python(requires_python)
    except Invalid:
        requires_python = ""  # pip ignores an invalid one too
    return CoreMetadata(
        name=name,
        version=parse_version(version, "core metadata Version"),
        requires_python=requires_python,
        summary=raw.get("summary") or "",
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
    )


@dataclass
class PypiDraft(PackageDraft):
    """One twine upload: one distribution file, plus what the index needs about it, its core
    metadata (PEP 658) and Requires-Python."""

    core_metadata: str = ""
    core_metadata_sha256: str = ""
    requires_python: str = ""


@dataclass
class UploadForm:
    name: str
    version: str
    sha256_digest: str
    md5_digest: str
    requires_python: str
    metadata: dict
    blake2_256_digest: str = ""


def parse_form(data):
    """Validate twine's legacy upload fields (a QueryDict-like mapping)."""
    action = data.get(":action", "file_upload")
    if action != "file_upload":
        raise Invalid(f"400 Bad request - unsupported action {action!r}")
    name = (data.get("name") or "").strip()
    version = (data.get("version") or "").strip()
    if not name or len(name) > 255 or not NAME_PATTERN.match(name):
        raise Invalid("400 Bad request - name is invalid")
    if not version or len(version) > 255:
        raise Invalid("400 Bad request - version is invalid")
    parse_version(version)
    sha256_digest = (data.get("sha256_digest") or "").strip().lower()
    if sha256_digest and not re.fullmatch(r"[0-9a-f]{64}", sha256_digest):
        raise Invalid("400 Bad request - sha256_digest is invalid")
    md5_digest = (data.get("md5_digest") or "").strip().lower()
    if md5_digest and not re.fullmatch(r"[0-9a-f]{32}", md5_digest):
        raise Invalid("400 Bad request - md5_digest is invalid")
    blake2_256_digest = (data.get("blake2_256_digest") or "").strip().lower()
    if blake2_256_digest and not re.fullmatch(r"[0-9a-f]{64}", blake2_256_digest):
        raise Invalid("400 Bad request - blake2_256_digest is invalid")
    metadata = {key: (data.get(key) or "")[:limit] for key, limit in TRUNCATE.items() if data.get(key)}
    return UploadForm(
        name=name,
        version=version,
        sha256_digest=sha256_digest,
        md5_digest=md5_digest,
        blake2_256_digest=blake2_256_digest,
        requires_python=parse_requires_python(data.get("requires_python")),
        metadata=metadata,
    )


def check_file_name(form, file_name):
    """The file name must name the form's release; returns the distribution kind."""
    kind, file_project, file_version = parse_file_name(file_name)
    if file_project != canonicalize_name(form.name) or file_version != Version(form.version):
        raise Invalid(f"400 Bad request - file name {file_name!r} does not match {form.name} {form.version}")
    return kind


def check_core_metadata(form, core):
    """The core metadata inside the file must name the form's release too."""
    if canonicalize_name(core.name) != canonicalize_name(form.name):
        raise Invalid(f"400 Bad request - core metadata Name {core.name!r} does not match name {form.name!r}")
    if core.version != Version(form.version):
        raise Invalid(f"400 Bad request - core metadata Version {core.version} does not match version {form.version}")
