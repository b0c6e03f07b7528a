"""Pure NuGet parsing: versions, the multipart push body, the .nupkg zip and its .nuspec, the
v2 feed's OData parameters and the search parameters.

No ORM, no HTTP. Everything that is refused raises registry.errors.Invalid (400).
"""

import re
import zipfile
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from packages_nuget import symbols
from registry import archives
from registry.errors import Invalid
from registry.formats import PackageDraft

NAME = re.compile(r"^[-+._a-zA-Z0-9]+\Z")
# MAJOR.MINOR[.PATCH][.REVISION] + SemVer pre-release/build (GitLab's NuGet version rule).
VERSION = re.compile(
    r"^(?P<numbers>\d+(?:\.\d+){1,3})"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z",
    re.ASCII,
)
MAX_NUSPEC_SIZE = 1024 * 1024
MAX_ENTRIES = 100_000
MAX_AUTHORS = 255
MAX_DESCRIPTION = 4000
MAX_URL = 255
METADATA_MISSING = "package name, version, authors and/or description not found in metadata"


def valid_name(name):
    return bool(name) and len(name) <= 255 and bool(NAME.match(name)) and name not in (".", "..")


def valid_version(version):
    return bool(version) and len(version) <= 255 and bool(VERSION.match(version))


def normalize_version(version):
    """NuGet's normalised form: no leading zeros, at least three numbers, a 4th only when not
    0, no build metadata, lower case. A string that is not a NuGet version is only lowered."""
    match = VERSION.match(version or "")
    if not match:
        return (version or "").lower()
    numbers = [str(int(n)) for n in match["numbers"].split(".")]
    while len(numbers) < 3:
        numbers.append("0")
    if len(numbers) == 4 and numbers[3] == "0":
        numbers = numbers[:3]
    text = ".".join(numbers)
    if match["pre"]:
        text += "-" + match["pre"]
    return text.lower()


def is_prerelease(version):
    match = VERSION.match(version or "")
    return bool(match and match["pre"])


def sort_key(version):
    """Order NuGet versions (SemVer 2 precedence; unparsable strings first)."""
    match = VERSION.match(version or "")
    if not match:
        return ((), 0, ())
    numbers = tuple(int(n) for n in match["numbers"].split("."))
    numbers += (0,) * (4 - len(numbers))
    if not match["pre"]:
        return (numbers, 1, ())
    labels = tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in match["pre"].split("."))
    return (numbers, 0, labels)


# --- the push body -------------------------------------------------------------------------


def multipart_boundary(content_type):
    """The boundary of a multipart/form-data Content-Type, or Invalid."""
    media, _, params = (content_type or "").partition(";")
    if media.strip().lower() != "multipart/form-data":
        raise Invalid("400 Bad request - package is missing")
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip().strip('"')
            if value and len(value) <= 200:
                return value
    raise Invalid("400 Bad request - package is missing")


# --- the package ---------------------------------------------------------------------------


@dataclass
class Nuspec:
    id: str
    version: str
    authors: str = ""
    description: str = ""
    summary: str = ""
    title: str = ""
    tags: str = ""
    project_url: str = ""
    license_url: str = ""
    icon_url: str = ""
    dependency_groups: list = field(default_factory=list)
    text: str = ""
    license: str = ""  # <license type="expression">: an SPDX expression (a file license: its path)
    readme: str = ""  # <readme>: the path of the README inside the package


@dataclass
class NugetDraft(PackageDraft):
    """A push: the .nupkg (or .snupkg) and its nuspec, whose fields NuGet's own rows keep
    (symbol packages keep none)."""

    nuspec: Nuspec | None = None
    symbols: bool = False
    symbol_files: list = field(default_factory=list)  # packages_nuget.symbols.SymbolFile
    readme: str = ""  # the text of the nuspec's <readme> file


_NAMED_FILE = re.compile(r"^(?P<stem>.+?)\.(?P<version>\d+(?:\.\d+)+(?:-[0-9A-Za-z.-]+)?)\.s?nupkg$", re.IGNORECASE)


def check_file_name(file_name, spec):
    """A part named like `<id>.<version>.nupkg` must agree with its nuspec."""
    match = _NAMED_FILE.match(file_name or "")
    if not match:
        return
    same_id = match["stem"].lower() == spec.id.lower()
    same_version = normalize_version(match["version"]) == normalize_version(spec.version)
    if not (same_id and same_version):
        raise Invalid("400 Bad request - the file name does not match the package id and version in the .nuspec")


def _safe_entry_name(name):
    if not name or "\x00" in name:
        return False
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        return False
    return ".." not in normalized.split("/")


def read_nuspec_bytes(path, max_size):
    """The bytes of the single root *.nuspec of a .nupkg at `path` (a zip); Invalid otherwise,
    corrupt data included. Read under registry.archives' budget for `max_size`."""
    if not zipfile.is_zipfile(path):
        raise Invalid("400 Bad request - the package is not a valid zip (.nupkg) file")
    try:
        with archives.open_zip(
            path,
            "the package",
            max_bytes=archives.budget_for(max_size),
            unreadable="400 Bad request - the package is not a valid zip (.nupkg) file",
        ) as archive:
            entries = archive.members
            if len(entries) > MAX_ENTRIES:
                raise Invalid("400 Bad request - the package has too many entries")
            total = 0
            for entry in entries:
                if not _safe_entry_name(entry.filename):
                    raise Invalid("400 Bad request - the package contains an invalid entry name")
                total += entry.file_size
                if entry.file_size < 0 or (max_size and total > max_size * 200):
                    raise Invalid("400 Bad request - the package is too large when extracted")
            nuspecs = [e for e in entries if "/" not in e.filename and e.filename.lower().endswith(".nuspec")]
            if len(nuspecs) != 1:
                raise Invalid("400 Bad request - the package must contain exactly one .nuspec at its root")
            entry = nuspecs[0]
            if entry.file_size > MAX_NUSPEC_SIZE:
                raise Invalid("400 Bad request - the .nuspec is too large")
            with archive.open(entry) as handle:
                data = handle.read(MAX_NUSPEC_SIZE + 1)
            if len(data) > MAX_NUSPEC_SIZE:
                raise Invalid("400 Bad request - the .nuspec is too large")
            return data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, RuntimeError) as exc:
        raise Invalid("400 Bad request - the package is not a valid zip (.nupkg) file") from exc


def read_symbol_files(path, max_size):
    """The portable PDBs of a symbol package at `path` (already checked by read_nuspec_bytes),
    each with its identity (packages_nuget.symbols); other .pdb files are skipped. Read under
    registry.archives' budget for `max_size`."""
    found = []
    try:
        with archives.open_zip(
            path,
            "the package",
            max_bytes=archives.budget_for(max_size),
            unreadable="400 Bad request - the package is not a valid zip (.nupkg) file",
        ) as archive:
            for entry in archive.members:
                if not entry.filename.lower().endswith(".pdb") or entry.file_size > symbols.MAX_PDB_SIZE:
                    continue
                with archive.open(entry) as handle:
                    data = handle.read(symbols.MAX_PDB_SIZE + 1)
                identity = symbols.pdb_identity(data) if len(data) <= symbols.MAX_PDB_SIZE else None
                if identity is None:
                    continue
                signature, checksum = identity
                base_name = entry.filename.replace("\\", "/").rsplit("/", 1)[-1]
                found.append(symbols.SymbolFile(entry.filename, base_name.lower(), signature, checksum, len(data)))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, RuntimeError) as exc:
        raise Invalid("400 Bad request - the package is not a valid zip (.nupkg) file") from exc
    return found


MAX_README_BYTES = 512 * 1024


def read_readme(path, readme_path, max_size):
    """The text of the README file a nuspec names (`<readme>`) inside the .nupkg at `path`, or ""
    when there is none or it is larger than MAX_README_BYTES. Read under registry.archives'
    budget; call it on a package read_nuspec_bytes accepted."""
    if not readme_path:
        return ""
    with archives.open_zip(
        path,
        "the package",
        max_bytes=archives.budget_for(max_size),
        unreadable="400 Bad request - the package is not a valid zip (.nupkg) file",
    ) as archive:
        wanted = readme_path.lower()
        entry = next((e for e in archive.members if e.filename.replace("\\", "/").lower() == wanted), None)
        if entry is None or entry.file_size > MAX_README_BYTES:
            return ""
        with archive.open(entry) as handle:
            return handle.read(MAX_README_BYTES).decode("utf-8", errors="replace")


def _local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element, name):
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element, name):
    child = _child(element, name)
    return (child.text or "").strip() if child is not None else ""


def _dependency(element):
    dep_id = (element.get("id") or "").strip()
    if not dep_id:
        return None
    return {"id": dep_id, "range": (element.get("version") or "").strip()}


def _dependency_groups(metadata):
    deps = _child(metadata, "dependencies")
    if deps is None:
        return []
    groups = []
    loose = []
    for child in deps:
        name = _local(child.tag)
        if name == "group":
            items = [d for d in (_dependency(e) for e in child if _local(e.tag) == "dependency") if d]
            groups.append({"targetFramework": (child.get("targetFramework") or "").strip(), "dependencies": items})
        elif name == "dependency":
            dep = _dependency(child)
            if dep:
                loose.append(dep)
    if loose:
        groups.insert(0, {"targetFramework": "", "dependencies": loose})
    return groups


def parse_nuspec(data, symbols=False):
    """A Nuspec from the XML bytes; DTDs and entities are refused (XXE, billion laughs)."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise Invalid("400 Bad request - the .nuspec is not valid XML") from exc
    if _local(root.tag) != "package":
        raise Invalid("400 Bad request - the .nuspec has no <package> root")
    metadata = _child(root, "metadata")
    spec = Nuspec(
        id=_text(metadata, "id"),
        version=_text(metadata, "version"),
        authors=_text(metadata, "authors"),
        description=_text(metadata, "description"),
        summary=_text(metadata, "summary"),
        title=_text(metadata, "title"),
        tags=" ".join(_text(metadata, "tags").replace(",", " ").split()),
        project_url=_text(metadata, "projectUrl"),
        license_url=_text(metadata, "licenseUrl"),
        icon_url=_text(metadata, "iconUrl"),
        dependency_groups=_dependency_groups(metadata),
        text=data.decode("utf-8", errors="replace"),
        license=_text(metadata, "license")[:MAX_URL],
        readme=_text(metadata, "readme").replace("\\", "/").lstrip("/")[:MAX_URL],
    )
    if not spec.id or not spec.version or (not symbols and (not spec.authors or not spec.description)):
        raise Invalid(f"400 Bad request - {METADATA_MISSING}")
    if not valid_name(spec.id):
        raise Invalid("400 Bad request - package_name is invalid")
    if not valid_version(spec.version):
        raise Invalid("400 Bad request - package_version is invalid")
    if len(spec.authors) > MAX_AUTHORS:
        raise Invalid("400 Bad request - authors is too long (maximum is 255 characters)")
    spec.description = spec.description[:MAX_DESCRIPTION]
    for attr in ("project_url", "license_url", "icon_url"):
        value = getattr(spec, attr)
        if value and (len(value) > MAX_URL or not re.match(r"^https?://[^\s]+$", value)):
            raise Invalid(f"400 Bad request - {attr} is not a valid URL")
    return spec


def dependencies_string(groups):
    """The v2 `Dependencies` property: `id:range:tfm|...` (`::tfm` for an empty group)."""
    parts = []
    for group in groups:
        tfm = group.get("targetFramework", "")
        if not group.get("dependencies"):
            if tfm:
                parts.append(f"::{tfm}")
            continue
        for dep in group["dependencies"]:
            parts.append(f"{dep['id']}:{dep.get('range', '')}:{tfm}")
    return "|".join(parts)


# --- query parameters ------------------------------------------------------------------------

_QUOTED = re.compile(r"^'((?:[^']|'')*)'$")
_FILTER_ID = re.compile(r"tolower\(Id\)\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)
_FILTER_ID_PLAIN = re.compile(r"\bId\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)
_FILTER_VERSION = re.compile(r"\bVersion\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)


def odata_string(value):
    """The text of an OData string literal (`'Acme.Lib'`, quotes doubled inside), or None."""
    match = _QUOTED.match((value or "").strip())
    return match[1].replace("''", "'") if match else None


def odata_filter(expression):
    """(id, version or None) named by a v2 `$filter` (`tolower(Id) eq 'x'`, `Id eq 'x'`, with
    `and Version eq '1.0'`), or None when it names no id (every package). Nothing else of the
    expression is read."""
    match = _FILTER_ID.search(expression or "") or _FILTER_ID_PLAIN.search(expression or "")
    if not match:
        return None
    version = _FILTER_VERSION.search(expression)
    return match[1].replace("''", "'"), (version[1].replace("''", "'") if version else None)


def int_param(raw, name, default, minimum):
    """A whole-number query parameter (`skip`, `take`): `default` when absent or empty, Invalid
    when not a number or below `minimum`."""
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise Invalid(f"400 Bad request - {name} is invalid") from exc
    if value < minimum:
        raise Invalid(f"400 Bad request - {name} is invalid")
    return value
