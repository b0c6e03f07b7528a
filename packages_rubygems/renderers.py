"""RubyGems' documents, pure over rows (packages_rubygems.queries):

- the legacy index `gem` reads: `specs.4.8.gz`, `latest_specs.4.8.gz`, `prerelease_specs.4.8.gz`
  (gzipped Ruby Marshal of `[name, Gem::Version, platform]` triples) and
  `quick/Marshal.4.8/<gem>.gemspec.rz` (the zlib-deflated Marshal of one Gem::Specification);
- the compact index Bundler (and `gem` itself) prefers: `versions`, `info/<name>`, `names`.

Ruby Marshal is written by the `rubymarshal` library. Every object handed to it is new: it
links objects it meets twice by identity, with indexes Ruby would count differently.
"""

import functools
import gzip
import hashlib
import re
import zlib

from rubymarshal.classes import RubyObject, Symbol, UserDef, UsrMarshal
from rubymarshal.writer import writes

from packages_rubygems.parsers import is_prerelease

# --- versions ----------------------------------------------------------------------------------


def _segments(version):
    return [int(s) if s.isdigit() else s for s in re.findall(r"[0-9]+|[a-zA-Z]+", version.split("-", 1)[0])]


def compare_versions(left, right):
    """Gem::Version#<=>: segment by segment, a missing one as 0, a letter segment (a prerelease)
    before any number; the platform part ignored."""
    a, b = _segments(left), _segments(right)
    for index in range(max(len(a), len(b))):
        x = a[index] if index < len(a) else 0
        y = b[index] if index < len(b) else 0
        if x == y:
            continue
        if isinstance(x, str) != isinstance(y, str):
            return -1 if isinstance(x, str) else 1
        return -1 if x < y else 1
    return 0


version_key = functools.cmp_to_key(compare_versions)


def split_platform(version, platform):
    """(gem version, platform) of a stored version (`1.0-x86_64-linux` for a platform gem)."""
    suffix = f"-{platform}"
    if platform != "ruby" and version.endswith(suffix):
        return version[: -len(suffix)], platform
    return version, "ruby"


# --- Marshal -------------------------------------------------------------------------------------


def _gem_version(version):
    value = UsrMarshal("Gem::Version")
    value.marshal_load([version])
    return value


def _gem_requirement(pairs):
    value = UsrMarshal("Gem::Requirement")
    value.marshal_load([[[operator, _gem_version(version)] for operator, version in pairs]])
    return value


def _gem_dependency(name, pairs, kind):
    return RubyObject(
        "Gem::Dependency",
        {
            "@name": name,
            "@requirement": _gem_requirement(pairs),
            "@type": Symbol(kind),
            "@prerelease": False,
        },
    )


def specs_file(rows):
    """A gzipped `specs.4.8` (any of the three): rows of (name, version, metadata)."""
    triples = []
    for name, version, metadata in rows:
        gem_version, platform = split_platform(version, (metadata or {}).get("platform", "ruby"))
        triples.append([name, _gem_version(gem_version), platform])
    return gzip.compress(writes(triples), mtime=0)


def specs_rows(rows, which):
    """The rows `specs` (released), `prerelease_specs` or `latest_specs` (the highest released
    version per name and platform) list, from (name, version, metadata) rows."""
    if which == "prerelease_specs":
        return [row for row in rows if is_prerelease(split_platform(row[1], (row[2] or {}).get("platform", "ruby"))[0])]
    released = [row for row in rows if not is_prerelease(row[1].split("-", 1)[0])]
    if which == "specs":
        return released
    latest = {}
    for row in released:
        key = (row[0], (row[2] or {}).get("platform", "ruby"))
        if key not in latest or compare_versions(row[1], latest[key][1]) > 0:
            latest[key] = row
    platform = lambda row: (row[2] or {}).get("platform", "ruby")  # noqa: E731
    return sorted(latest.values(), key=lambda row: (row[0], version_key(row[1]), platform(row)))


def quick_spec(name, version, metadata):
    """`quick/Marshal.4.8/<gem>.gemspec.rz`: Gem::Specification's `_dump` array, deflated."""
    metadata = metadata or {}
    gem_version, platform = split_platform(version, metadata.get("platform", "ruby"))
    fields = [
        metadata.get("rubygems_version", "0"),
        metadata.get("specification_version", 4),
        name,
        _gem_version(gem_version),
        metadata.get("date", "1980-01-02"),
        metadata.get("summary", ""),
        _gem_requirement(metadata.get("required_ruby_version", [[">=", "0"]])),
        _gem_requirement(metadata.get("required_rubygems_version", [[">=", "0"]])),
        platform,
        [_gem_dependency(dep, pairs, kind) for dep, pairs, kind in metadata.get("dependencies", [])],
        "",  # rubyforge_project, removed
        (metadata.get("email") or [None])[0] if len(metadata.get("email") or []) <= 1 else list(metadata["email"]),
        list(metadata.get("authors", [])),
        metadata.get("description"),
        metadata.get("homepage"),
        True,  # has_rdoc
        platform,
        list(metadata.get("licenses", [])),
        dict(metadata.get("metadata", {})),
    ]
    specification = UserDef("Gem::Specification")  # Marshal type `u`: Specification._load reads
    specification._load(writes(fields))  # noqa: SLF001 - rubymarshal's way to give its bytes
    return zlib.compress(writes(specification))


# --- the compact index ---------------------------------------------------------------------------


def _requirement_text(pairs):
    return "&".join(f"{operator} {version}" for operator, version in pairs)


def info_file(rows):
    """`info/<name>`: one line per version, oldest first, from (version, metadata, sha256) rows:
    `<version> <dep>:<req>&<req>,…|checksum:<sha256>[,ruby:<req>][,rubygems:<req>]`."""
    lines = ["---"]
    for version, metadata, sha256 in rows:
        metadata = metadata or {}
        deps = ",".join(
            f"{dep}:{_requirement_text(pairs)}"
            for dep, pairs, kind in metadata.get("dependencies", [])
            if kind == "runtime"
        )
        requirements = [f"checksum:{sha256}"]
        for key, label in (("required_ruby_version", "ruby"), ("required_rubygems_version", "rubygems")):
            pairs = metadata.get(key) or [[">=", "0"]]
            if pairs != [[">=", "0"]]:
                requirements.append(f"{label}:{_requirement_text(pairs)}")
        lines.append(f"{version} {deps}|{','.join(requirements)}")
    return "\n".join(lines) + "\n"


def versions_file(gems, created_at):
    """`versions`: `created_at`, then `<name> <version>,<version> <md5 of info/<name>>` per gem,
    from {name: [(version, metadata, sha256), …]} (each list oldest first)."""
    lines = [f"created_at: {created_at}", "---"]
    for name in sorted(gems):
        rows = gems[name]
        md5 = hashlib.md5(info_file(rows).encode()).hexdigest()  # noqa: S324 - the protocol's checksum
        lines.append(f"{name} {','.join(version for version, _, _ in rows)} {md5}")
    return "\n".join(lines) + "\n"


def names_file(names):
    return "---\n" + "".join(f"{name}\n" for name in sorted(names))
