"""RubyGems: gem names and versions, the `.gem` archive and the specification inside it. Pure:
no database, no request.

A `.gem` is a tar (not compressed) of `metadata.gz` (the gzipped YAML of the
Gem::Specification, with Ruby's `!ruby/object:` tags), `data.tar.gz` and `checksums.yaml.gz`.
The YAML is read with PyYAML's safe loader, taught to read Ruby's object tags as plain mappings.
"""

import gzip
import io
import re
from dataclasses import dataclass, field

import yaml

from registry.archives import budget_for, open_tar
from registry.errors import Invalid
from registry.formats import PackageDraft

# rubygems.org's rule: letters, digits, `.`, `-`, `_`, with at least one letter or digit.
NAME = re.compile(r"^(?=.*[A-Za-z0-9])[A-Za-z0-9._-]+\Z")
MAX_NAME_LENGTH = 255
# Gem::Version::ANCHORED_VERSION_PATTERN, then `-<platform>` for a platform gem.
GEM_VERSION = re.compile(r"^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z.-]+)?\Z")
VERSION = re.compile(r"^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z._-]+)?\Z")
PLATFORM = re.compile(r"^[A-Za-z0-9_.-]+\Z")
OPERATORS = ("=", "!=", ">", "<", ">=", "<=", "~>")
MAX_METADATA_BYTES = 10 * 1024 * 1024  # the YAML specification, inflated


def valid_name(name):
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and bool(NAME.match(name))


def valid_version(version):
    """A stored version: the gem's version, then `-<platform>` for a platform gem."""
    return isinstance(version, str) and len(version) <= 255 and bool(VERSION.match(version))


def is_prerelease(version):
    """Gem::Version#prerelease?: a letter in the version itself (not the platform)."""
    return bool(re.search(r"[a-zA-Z]", version.split("-", 1)[0]))


def gem_file_name(name, version):
    """`<name>-<version>.gem`, the platform part of `version` included."""
    return f"{name}-{version}.gem"


# --- Ruby's YAML -------------------------------------------------------------------------------


class _RubyYamlLoader(yaml.SafeLoader):
    """The safe loader, with `!ruby/object:<Class>` (and other `!ruby/` tags) read as mappings
    that name their class under `__class__`. Nothing is instantiated but plain data."""


def _ruby_object(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
        return {"__class__": suffix, **value}
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_RubyYamlLoader.add_multi_constructor("!ruby/object:", _ruby_object)
_RubyYamlLoader.add_multi_constructor("!ruby/", _ruby_object)


def load_specification_yaml(text):
    try:
        document = yaml.load(text, Loader=_RubyYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, RecursionError) as exc:
        raise Invalid("400 Bad request - the gem's metadata is not readable YAML") from exc
    if not isinstance(document, dict) or document.get("__class__") != "Gem::Specification":
        raise Invalid("400 Bad request - the gem's metadata is not a Gem::Specification")
    return document


# --- the specification -------------------------------------------------------------------------


def _version_of(value, what):
    if isinstance(value, dict):
        value = value.get("version")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or not GEM_VERSION.match(value):
        raise Invalid(f"400 Bad request - invalid {what}")
    return value


def requirement(value, what):
    """A Gem::Requirement -> [[operator, version], ...] (`>= 0` when empty)."""
    pairs = value.get("requirements") if isinstance(value, dict) else None
    if pairs is None:
        return [[">=", "0"]]
    if not isinstance(pairs, list):
        raise Invalid(f"400 Bad request - invalid {what}")
    result = []
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] not in OPERATORS:
            raise Invalid(f"400 Bad request - invalid {what}")
        result.append([pair[0], _version_of(pair[1], what)])
    return result or [[">=", "0"]]


def _platform(value):
    if value is None or value == "ruby":
        return "ruby"
    if isinstance(value, dict):  # !ruby/object:Gem::Platform {cpu, os, version}
        value = "-".join(str(part) for part in (value.get("cpu"), value.get("os"), value.get("version")) if part)
    if not isinstance(value, str) or not PLATFORM.match(value):
        raise Invalid("400 Bad request - invalid platform")
    return value


def _strings(value):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _text(value):
    return value if isinstance(value, str) else None


@dataclass
class GemDraft(PackageDraft):
    """A pushed gem: `metadata` holds what the indexes serve (platform, dependencies,
    requirements, descriptive fields)."""

    platform: str = "ruby"
    spec_version: str = ""
    dependencies: list = field(default_factory=list)


def parse_specification(spec):
    """A loaded Gem::Specification (load_specification_yaml) -> GemDraft (no files yet)."""
    name = spec.get("name")
    if not valid_name(name):
        raise Invalid("400 Bad request - invalid gem name")
    version = _version_of(spec.get("version"), "version")
    platform = _platform(spec.get("platform"))
    dependencies = []
    for dep in spec.get("dependencies") or []:
        if not isinstance(dep, dict) or not valid_name(dep.get("name")):
            raise Invalid("400 Bad request - invalid dependency")
        kind = str(dep.get("type") or ":runtime").lstrip(":")
        if kind not in ("runtime", "development"):
            raise Invalid("400 Bad request - invalid dependency type")
        dependencies.append([dep["name"], requirement(dep.get("requirement"), f"requirement of {dep['name']}"), kind])
    date = spec.get("date")
    metadata = {
        "platform": platform,
        "dependencies": dependencies,
        "required_ruby_version": requirement(spec.get("required_ruby_version"), "required_ruby_version"),
        "required_rubygems_version": requirement(spec.get("required_rubygems_version"), "required_rubygems_version"),
        "summary": _text(spec.get("summary")) or "",
        "description": _text(spec.get("description")),
        "authors": _strings(spec.get("authors")),
        "email": _strings(spec.get("email")),
        "homepage": _text(spec.get("homepage")),
        "licenses": _strings(spec.get("licenses")),
        "metadata": {
            k: v for k, v in (spec.get("metadata") or {}).items() if isinstance(k, str) and isinstance(v, str)
        },
        "rubygems_version": _text(spec.get("rubygems_version")) or "0",
        "specification_version": spec.get("specification_version")
        if isinstance(spec.get("specification_version"), int)
        else 4,
        "date": date.strftime("%Y-%m-%d") if hasattr(date, "strftime") else "1980-01-02",
    }
    stored = version if platform == "ruby" else f"{version}-{platform}"
    return GemDraft(name=name, version=stored, metadata=metadata, platform=platform, spec_version=version)


def read_gem(path, max_file_size):
    """The `.gem` at `path` -> GemDraft (no files yet). Raises Invalid."""
    metadata = None
    unreadable = "400 Bad request - the file is not a gem (a tar with metadata.gz)"
    with open_tar(path, "gem", max_bytes=budget_for(max_file_size), gzipped=False, unreadable=unreadable) as archive:
        for member in archive:
            if member.name == "metadata.gz" and member.isfile():
                metadata = archive.extractfile(member).read()
    if metadata is None:
        raise Invalid("400 Bad request - the gem has no metadata.gz")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(metadata)) as inflated:
            text = inflated.read(MAX_METADATA_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise Invalid("400 Bad request - the gem's metadata.gz is not gzip") from exc
    if len(text) > MAX_METADATA_BYTES:
        raise Invalid("400 Bad request - the gem's metadata is too large")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("400 Bad request - the gem's metadata is not UTF-8") from exc
    return parse_specification(load_specification_yaml(decoded))
