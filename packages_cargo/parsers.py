"""Cargo: crate names and versions, the binary publish body, the `.crate` archive, sparse index
paths and the index entry a publish becomes. Pure: no database, no request.

The publish body (`PUT api/v1/crates/new`) is, in order: the length of the JSON metadata (u32,
little-endian), the JSON metadata, the length of the `.crate` file (u32, little-endian) and the
`.crate` file (a gzipped tar whose every member is under `<name>-<vers>/`).
"""

import json
import re
import struct
import tomllib
from dataclasses import dataclass

from registry.archives import budget_for, open_tar
from registry.errors import Invalid, TooLarge
from registry.formats import PackageDraft

# crates.io: ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 characters.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
MAX_NAME_LENGTH = 64
# SemVer 2.0 (semver.org's regular expression), the only versions Cargo knows.
_NUMBER = r"(?:0|[1-9]\d*)"
_PRE = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER = re.compile(
    rf"^{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-{_PRE}(?:\.{_PRE})*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z",
    re.ASCII,
)
MAX_VERSION_LENGTH = 255
# Windows device names crates.io refuses as crate names (they cannot be directories there).
RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
)
DEPENDENCY_KINDS = ("normal", "dev", "build")
# The JSON before the crate: cargo sends the README's text in it, so it may be large.
MAX_METADATA_BYTES = 8 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024  # a crate's Cargo.toml
# Descriptive fields of the publish metadata kept on the version (pages, the packages API).
DESCRIPTIVE_KEYS = (
    "description",
    "documentation",
    "homepage",
    "license",
    "license_file",
    "repository",
    "authors",
    "keywords",
    "categories",
)


def valid_name(name):
    return isinstance(name, str) and bool(NAME.match(name)) and name.lower() not in RESERVED_NAMES


def valid_version(version):
    return isinstance(version, str) and len(version) <= MAX_VERSION_LENGTH and bool(SEMVER.match(version))


def normalize_name(name):
    """crates.io's uniqueness: case-insensitive, `-` and `_` the same."""
    return name.lower().replace("_", "-")


def normalize_version(version):
    """Versions that differ only in build metadata (`+...`) are the same version."""
    return version.split("+", 1)[0]


def index_path(name):
    """The sparse index file of a crate, relative to the index root: `1/a`, `2/ab`, `3/a/abc`,
    `ab/cd/abcd`, always in lower case."""
    name = name.lower()
    if len(name) <= 2:
        return f"{len(name)}/{name}"
    if len(name) == 3:
        return f"3/{name[0]}/{name}"
    return f"{name[0:2]}/{name[2:4]}/{name}"


def crate_file_name(name, version):
    return f"{name}-{version}.crate"


# --- the publish body ------------------------------------------------------------------------


def _read_exactly(stream, count, what):
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            raise Invalid(f"invalid upload request: the body ended inside the {what}")
        data += chunk
    return data


def _read_length(stream, what):
    return struct.unpack("<I", _read_exactly(stream, 4, f"length of the {what}"))[0]


def read_metadata(stream):
    """The JSON metadata at the start of a publish body, and the announced length of the crate
    that follows it. Leaves `stream` at the first byte of the crate."""
    length = _read_length(stream, "metadata")
    if length > MAX_METADATA_BYTES:
        raise Invalid(f"invalid upload request: the metadata is over {MAX_METADATA_BYTES} bytes")
    raw = _read_exactly(stream, length, "metadata")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Invalid("invalid upload request: the metadata is not JSON") from exc
    crate_length = _read_length(stream, "crate")
    return document, crate_length, 8 + length + crate_length


def check_crate_length(crate_length, max_size):
    if max_size and crate_length > max_size:
        raise TooLarge(f"max upload size is: {max_size}")


# --- the metadata ----------------------------------------------------------------------------


@dataclass
class CargoDraft(PackageDraft):
    """A publish: `metadata` holds the index entry's fields (`deps`, `features`, `features2`,
    `links`, `rust_version`) and the descriptive ones, as the version keeps them; a yank adds
    `withdrawn` later (registry.services.set_withdrawn)."""


def _string(value, what, *, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise Invalid(f"invalid upload request: `{what}` must be a string")
    return value


def _strings(value, what):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Invalid(f"invalid upload request: `{what}` must be a list of strings")
    return value


def _bool(value, what, default):
    if value is None:
        return default
    if not isinstance(value, bool):
        raise Invalid(f"invalid upload request: `{what}` must be true or false")
    return value


def index_dependency(dep):
    """One dependency of the publish metadata as the index lists it: the name it is used under
    (`explicit_name_in_toml`, a rename) as `name`, the crate it is as `package`."""
    if not isinstance(dep, dict):
        raise Invalid("invalid upload request: each dependency must be an object")
    crate = _string(dep.get("name"), "deps.name")
    if not valid_name(crate):
        raise Invalid(f"invalid upload request: invalid dependency name `{crate}`")
    rename = _string(dep.get("explicit_name_in_toml"), "deps.explicit_name_in_toml", optional=True)
    if rename is not None and not valid_name(rename):
        raise Invalid(f"invalid upload request: invalid dependency name `{rename}`")
    kind = dep.get("kind") or "normal"
    if kind not in DEPENDENCY_KINDS:
        raise Invalid(f"invalid upload request: invalid dependency kind `{kind}`")
    entry = {
        "name": rename or crate,
        "req": _string(dep.get("version_req"), "deps.version_req"),
        "features": _strings(dep.get("features"), "deps.features"),
        "optional": _bool(dep.get("optional"), "deps.optional", False),
        "default_features": _bool(dep.get("default_features"), "deps.default_features", True),
        "target": _string(dep.get("target"), "deps.target", optional=True),
        "kind": kind,
        "registry": _string(dep.get("registry"), "deps.registry", optional=True),
    }
    if rename is not None:
        entry["package"] = crate
    return entry


def _features(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("invalid upload request: `features` must be an object")
    for feature, enables in value.items():
        _strings(enables, f"features.{feature}")
    return value


def _uses_new_syntax(enables):
    return any(item.startswith("dep:") or "?/" in item for item in enables)


def parse_metadata(document):
    """The publish metadata -> CargoDraft (no files yet). Raises Invalid."""
    if not isinstance(document, dict):
        raise Invalid("invalid upload request: the metadata must be a JSON object")
    name = _string(document.get("name"), "name")
    version = _string(document.get("vers"), "vers")
    if not valid_name(name):
        raise Invalid(
            f"invalid crate name `{name}`: crate names are ASCII letters, digits, `-` and `_`, "
            f"start with a letter and have at most {MAX_NAME_LENGTH} characters"
        )
    if not valid_version(version):
        raise Invalid(f"invalid upload request: `{version}` is not a SemVer 2.0 version")
    deps = document.get("deps")
    deps = [] if deps is None else deps
    if not isinstance(deps, list):
        raise Invalid("invalid upload request: `deps` must be a list")
    features = _features(document.get("features"))
    # crates.io's split: features using `dep:` or `?/` go to `features2` (index format v2), so
    # older Cargo versions that cannot read them skip just those.
    features2 = {key: value for key, value in features.items() if _uses_new_syntax(value)}
    metadata = {
        "deps": [index_dependency(dep) for dep in deps],
        "features": {key: value for key, value in features.items() if key not in features2},
        "links": _string(document.get("links"), "links", optional=True),
        "rust_version": _string(document.get("rust_version"), "rust_version", optional=True),
    }
    if features2:
        metadata["features2"] = features2
    for key in DESCRIPTIVE_KEYS:
        value = document.get(key)
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            metadata[key] = value
    return CargoDraft(name=name, version=version, metadata=metadata)


# --- the crate -------------------------------------------------------------------------------


def check_crate(path, name, version, max_file_size):
    """The `.crate` at `path` is a gzipped tar whose every member is under `<name>-<version>/`,
    with a `Cargo.toml` there naming the same package and version. Raises Invalid."""
    prefix = f"{name}-{version}/"
    manifest = None
    unreadable = "invalid upload request: the crate is not a gzipped tar archive"
    with open_tar(path, "crate", max_bytes=budget_for(max_file_size), unreadable=unreadable) as archive:
        for member in archive:
            if member.name == prefix[:-1] and member.isdir():
                continue
            if not member.name.startswith(prefix) or ".." in member.name.split("/"):
                raise Invalid(f"invalid upload request: `{member.name}` is not under `{prefix}`")
            if member.name == f"{prefix}Cargo.toml" and member.isfile():
                if member.size > MAX_MANIFEST_BYTES:
                    raise Invalid("invalid upload request: Cargo.toml is too large")
                manifest = archive.extractfile(member).read()
    if manifest is None:
        raise Invalid(f"invalid upload request: the crate has no `{prefix}Cargo.toml`")
    try:
        package = tomllib.loads(manifest.decode("utf-8")).get("package", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Invalid("invalid upload request: the crate's Cargo.toml is not valid TOML") from exc
    if not isinstance(package, dict) or package.get("name") != name or package.get("version") != version:
        raise Invalid(
            f"invalid upload request: the crate's Cargo.toml does not describe {name} {version} as the metadata does"
        )
