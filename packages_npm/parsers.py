"""Pure npm parsing: names, versions, the publish document and the tarball. No ORM, no HTTP."""

import base64
import binascii
import json
import posixpath
import re
from dataclasses import dataclass, field

from registry import archives
from registry.errors import Invalid
from registry.formats import FileDraft, PackageDraft

# npm's rules for new packages (validate-npm-package-name): lowercase, URL-safe, no leading
# `.` or `_`, at most 214 characters; a scope is `@<segment>/`.
_SEGMENT = r"[a-z0-9~-][a-z0-9._~-]*"
NAME = re.compile(rf"(?:@({_SEGMENT})/)?({_SEGMENT})", re.ASCII)
MAX_NAME_LENGTH = 214
# SemVer 2.0 (semver.org's regex, ASCII digits only, no `v`, no leading zeros).
_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER = re.compile(
    rf"({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", re.ASCII)
# npm refuses a tag that is a valid SemVer range (`1`, `1.0`, `v1.0`, `1.x`, `x`): `npm install
# name@1.0` would read it as a range, not as the tag.
_XR = r"(?:[0-9]+|[xX*])"
VERSION_LIKE_TAG = re.compile(
    rf"[vV=]*{_XR}(?:\.{_XR}(?:\.{_XR}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)?)?", re.ASCII
)
TAG_INVALID = "Tag {tag!r} is invalid: use letters, digits, '.', '_' or '-', and nothing that looks like a version."

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # package.json inside the tarball
MAX_METADATA_CHARS = 20_000  # the cleaned package.json we keep
# Keys of a version's package.json that are kept and echoed in the packument.
KEPT_KEYS = (
    "description",
    "license",
    "keywords",
    "homepage",
    "repository",
    "bugs",
    "author",
    "main",
    "module",
    "types",
    "typings",
    "bin",
    "directories",
    "engines",
    "os",
    "cpu",
    "libc",
    "dependencies",
    "devDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "optionalDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "acceptDependencies",
    "deprecated",
    "funding",
    "_hasShrinkwrap",
)
INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")


# Names npm accepts for packages that exist but refuses for new ones (validate-npm-package-name:
# "name can no longer contain special characters", and its two reserved names).
RESERVED_NAMES = frozenset({"node_modules", "favicon.ico"})


def valid_name(name):
    """A name npm can address (reads; packages published under older rules included)."""
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and NAME.fullmatch(name) is not None


def valid_new_name(name):
    """A name a publish may use: as valid_name, without `~` in the name after the scope and
    not a reserved name."""
    if not valid_name(name):
        return False
    bare = name.rsplit("/", 1)[-1]
    return "~" not in bare and bare not in RESERVED_NAMES


def scope_of(name):
    """`acme` for `@acme/left-pad`, None for an unscoped name."""
    match = NAME.fullmatch(name or "")
    return match.group(1) if match else None


def basename(name):
    return name.rsplit("/", 1)[-1]


def tarball_name(name, version):
    """The stored file name: `left-pad-1.0.0.tgz` (the registry's own naming, scope dropped)."""
    return f"{basename(name)}-{version}.tgz"


def tarball_version(package_name, file_name):
    """`1.0.0` from `@scope/name-1.0.0.tgz` or `name-1.0.0.tgz`, or None."""
    scope = scope_of(package_name)
    if file_name.startswith("@"):
        prefix = f"@{scope}/"
        if scope is None or not file_name.startswith(prefix):
            return None
        file_name = file_name[len(prefix) :]
    stem = basename(package_name) + "-"
    if not file_name.startswith(stem) or not file_name.endswith(".tgz"):
        return None
    version = file_name[len(stem) : -len(".tgz")]
    return version if valid_version(version) else None


def valid_version(version):
    return isinstance(version, str) and len(version) <= 255 and SEMVER.fullmatch(version) is not None


def valid_tag(tag):
    return isinstance(tag, str) and TAG.fullmatch(tag) is not None and VERSION_LIKE_TAG.fullmatch(tag) is None


def _prerelease_key(prerelease):
    # Numeric identifiers sort numerically and below alphanumeric ones.
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in prerelease.split(".")]


def semver_key(version):
    """SemVer precedence; a release ranks above its pre-releases; build metadata ignored."""
    match = SEMVER.fullmatch(version)
    if match is None:
        return ((-1, -1, -1), 0, [], version)
    major, minor, patch, prerelease, _build = match.groups()
    core = (int(major), int(minor), int(patch))
    if prerelease is None:
        return (core, 1, [], version)
    return (core, 0, _prerelease_key(prerelease), version)


# --- publish ---------------------------------------------------------------------------------


@dataclass
class NpmDraft(PackageDraft):
    dist_tags: list = field(default_factory=list)
    readme: str = ""


def integrity_sha512_hex(integrity):
    """The sha512 hex digest of an SRI string (`sha512-<base64>`, maybe among others), or None."""
    if not isinstance(integrity, str):
        return None
    for entry in integrity.split():
        algorithm, _, digest = entry.partition("-")
        if algorithm == "sha512":
            digest = digest.split("?", 1)[0]
            try:
                return base64.b64decode(digest, validate=True).hex()
            except (binascii.Error, ValueError):
                raise Invalid("dist.integrity is not valid.") from None
    return None


def parse_publish(body, url_name, max_file_size=0):
    """Validate an `npm publish` body (packages_npm.publish_body.PublishBody); returns
    (draft, spool), the spool of the tarball taken from the body. The caller cleans it up."""
    document = body.document
    if not isinstance(document, dict):
        raise Invalid("Invalid publish document.")
    name = document.get("name", url_name)
    if name != url_name:
        raise Invalid("Package name in the body does not match the URL.")
    if not valid_new_name(name):
        raise Invalid("Package name is invalid.")
    versions = document.get("versions")
    if not isinstance(versions, dict) or not versions:
        raise Invalid("Version is empty.")
    if len(versions) > 1:
        raise Invalid(f"A publish carries one version; the body has {', '.join(map(str, versions))}.")
    version = next(iter(versions))
    if not version:
        raise Invalid("Version is empty.")
    if not valid_version(version):
        raise Invalid("Version is invalid: it must follow SemVer 2.0.")
    manifest = versions[version]
    if not isinstance(manifest, dict):
        raise Invalid("Version manifest is invalid.")
    if manifest.get("name", name) != name or manifest.get("version", version) != version:
        raise Invalid("Version manifest does not match the package name and version.")
    attachments = document.get("_attachments")
    if not isinstance(attachments, dict):
        raise Invalid("Attachment data is empty.")
    if len(attachments) > 1:
        raise Invalid(f"A publish carries one attachment, the version's tarball; the body has {len(attachments)}.")
    attachment = attachments.get(f"{name}-{version}.tgz")
    if not isinstance(attachment, dict):
        raise Invalid(f"Attachment {name}-{version}.tgz not given.")
    dist = manifest.get("dist") if isinstance(manifest.get("dist"), dict) else {}
    shasum = dist.get("shasum")
    if not isinstance(shasum, str) or not shasum:
        raise Invalid("dist.shasum not given.")
    sha512 = integrity_sha512_hex(dist.get("integrity"))
    tags = publish_tags(document.get("dist-tags"), version)

    spool = body.take(f"{name}-{version}.tgz")
    if spool is None:
        raise Invalid("Attachment data is empty.")
    try:
        if not spool.size:
            raise Invalid("Attachment data is empty.")
        length = attachment.get("length")
        if isinstance(length, int) and length != spool.size:
            raise Invalid(f"Attachment length {length} does not match the {spool.size} decoded bytes.")
        spool.verify("sha1", shasum, "dist.shasum")
        if sha512 is not None:
            spool.verify("sha512", sha512, "dist.integrity")
        files = set()
        readmes = {}
        package_json = read_tarball_manifest(spool.path, max_file_size, files, readmes)
        if package_json.get("name") != name or package_json.get("version") != version:
            raise Invalid("package.json in the tarball does not match the package name and version.")
        scripts = check_install_fields(name, manifest, package_json, files)
        metadata = clean_metadata(manifest, {"scripts": scripts})
        draft = NpmDraft(
            name=name,
            version=version,
            files=[FileDraft(file_name=tarball_name(name, version), spool=spool)],
            metadata=metadata,
            dist_tags=tags,
            readme=publish_readme(document, manifest, readmes),
        )
    except BaseException:
        spool.cleanup()
        raise
    return draft, spool


def publish_tags(dist_tags, version):
    """The tags a publish body gives: only valid names, only on the version it publishes
    (npm sends `{<tag>: <version>}`); none given means `latest`."""
    if dist_tags is None:
        return ["latest"]
    if not isinstance(dist_tags, dict):
        raise Invalid("dist-tags is not an object.")
    for tag, value in dist_tags.items():
        if not valid_tag(tag):
            raise Invalid(TAG_INVALID.format(tag=tag))
        if value != version:
            raise Invalid(f"dist-tags.{tag} is {value!r}: a publish may only tag the version it publishes ({version}).")
    return list(dist_tags) or ["latest"]


# --- manifest confusion: the body against the tarball's package.json ---------------------------
# What `npm install` reads (the packument) must be what the tarball says. npm 11 sends the
# tarball's package.json normalized (`@npmcli/package-json`): those rewrites are applied to the
# tarball's side before comparing; anything else that differs is refused, naming the field.

DEPENDENCY_KEYS = (
    "dependencies",
    "devDependencies",
    "peerDependencies",
    "optionalDependencies",
    "peerDependenciesMeta",
)
PLATFORM_KEYS = ("os", "cpu", "libc", "engines")
_SCRIPT_PATH = re.compile(r"^(?:\./)?node_modules/\.bin/")


def _present(value):
    return value if value not in (None, {}, [], "") else None


def _bundled(manifest):
    value = manifest.get("bundleDependencies", manifest.get("bundledDependencies"))
    if value is True:
        value = list(manifest.get("dependencies") or {}) if isinstance(manifest.get("dependencies"), dict) else []
    return sorted(value, key=str) if isinstance(value, list) and value else _present(value)


def _bin(name, manifest):
    value = manifest.get("bin")
    if isinstance(value, str):
        value = {basename(name): value}
    if not isinstance(value, dict):
        return _present(value)
    cleaned = {}
    for key, path in value.items():
        if not isinstance(path, str):
            return value  # not something npm would send: compared as it is
        cleaned[posixpath.basename(key)] = posixpath.normpath(path.replace("\\", "/"))
    return cleaned or None


def _install_scripts(manifest, files=None):
    """{preinstall, install, postinstall} as npm runs them; with `files` (the tarball's), the
    `node-gyp rebuild` install npm adds for a binding.gyp."""
    scripts = manifest.get("scripts")
    scripts = scripts if isinstance(scripts, dict) else {}
    found = {}
    for key in INSTALL_SCRIPTS:
        value = scripts.get(key)
        if value is not None:
            found[key] = _SCRIPT_PATH.sub("", value) if isinstance(value, str) else value
    if files is not None and "package/binding.gyp" in files and "install" not in found and "preinstall" not in found:
        found["install"] = "node-gyp rebuild"
    return found


def _mismatch(field):
    return Invalid(f"{field} in the publish body does not match package.json in the tarball.")


def check_install_fields(name, manifest, package_json, files):
    """Refuse a body whose version manifest disagrees with the tarball's package.json on what
    install reads; returns the install scripts the tarball has."""
    for key in DEPENDENCY_KEYS + PLATFORM_KEYS:
        if _present(manifest.get(key)) != _present(package_json.get(key)):
            raise _mismatch(key)
    if _bundled(manifest) != _bundled(package_json):
        raise _mismatch("bundleDependencies")
    claimed, packed = _bin(name, manifest), _bin(name, package_json)
    if claimed != packed and not _bin_from_directory(claimed, packed, package_json, files):
        raise _mismatch("bin")
    scripts = _install_scripts(package_json, files)
    if _install_scripts(manifest) != scripts:
        raise _mismatch("scripts")
    if "hasInstallScript" in manifest and manifest["hasInstallScript"] is not bool(scripts):
        raise _mismatch("hasInstallScript")
    return scripts


def _bin_from_directory(claimed, packed, package_json, files):
    """npm fills `bin` from `directories.bin` when there is none: each entry a file of that
    directory in the tarball, named after it."""
    directories = package_json.get("directories")
    directory = directories.get("bin") if isinstance(directories, dict) else None
    if packed is not None or not isinstance(directory, str) or not isinstance(claimed, dict):
        return False
    prefix = posixpath.normpath(directory) + "/"
    return all(
        path.startswith(prefix) and f"package/{path}" in files and key == posixpath.basename(path)
        for key, path in claimed.items()
    )


def clean_metadata(manifest, package_json):
    metadata = {key: manifest[key] for key in KEPT_KEYS if key in manifest}
    scripts = package_json.get("scripts") if isinstance(package_json.get("scripts"), dict) else {}
    if any(key in scripts for key in INSTALL_SCRIPTS) or manifest.get("hasInstallScript") is True:
        metadata["hasInstallScript"] = True
    if len(json.dumps(metadata)) > MAX_METADATA_CHARS:
        raise Invalid(f"package.json is too large (more than {MAX_METADATA_CHARS} characters).")
    return metadata


# --- tarball ---------------------------------------------------------------------------------


def _unsafe(path):
    if not path or path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return True
    return ".." in re.split(r"[/\\]+", path)


def _escapes(member):
    """Whether a link member points outside the archive root."""
    target = member.linkname
    if _unsafe(target):
        return True
    base = posixpath.dirname(member.name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    return resolved == ".." or resolved.startswith("../") or resolved.startswith("/")


MAX_README_CHARS = 512 * 1024
README_FILE = re.compile(r"^package/readme(\.(md|markdown|txt|rst))?$", re.IGNORECASE)
NO_README = "ERROR: No README data found!"  # what older npm clients send when there is none


def publish_readme(document, manifest, readmes):
    """The version's README: what the client sent (`readme` of the version, else of the
    document, as npm does), else the tarball's own README file; at most MAX_README_CHARS."""
    for text in (manifest.get("readme"), document.get("readme")):
        if isinstance(text, str) and text.strip() and text.strip() != NO_README:
            return text[:MAX_README_CHARS]
    for name in sorted(readmes, key=lambda n: (not n.lower().endswith((".md", ".markdown")), n)):
        return readmes[name].decode("utf-8", errors="replace")[:MAX_README_CHARS]
    return ""


def read_tarball_manifest(path, max_file_size=0, files=None, readmes=None):
    """Open a package tarball safely and return its `package/package.json` as a dict (and, given
    a set as `files`, add the normalized path of each regular file to it; given a dict as
    `readmes`, put the bytes of each top-level README file in it by name).

    Refuses: not gzip, not tar, absolute or `..` member names, links out of the archive, device
    and fifo members, a missing, doubled, oversized or non-JSON package.json; a tarball that
    inflates past registry.archives' budget for `max_file_size` (0: the npm limit is unknown).
    """
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            raise Invalid("Package tarball is not gzip-compressed.")
    manifest = None
    with archives.open_tar(
        path,
        "Package tarball",
        max_bytes=archives.budget_for(max_file_size),
        unreadable="Package tarball is not a valid gzip-compressed tar archive.",
    ) as archive:
        for member in archive:
            name = member.name
            if _unsafe(name):
                raise Invalid(f"Package tarball has an unsafe member: {name!r}.")
            if member.issym() or member.islnk():
                if _escapes(member):
                    raise Invalid(f"Package tarball has a link out of the package: {name!r}.")
                continue
            if not (member.isfile() or member.isdir()):
                raise Invalid(f"Package tarball has a special member: {name!r}.")
            if files is not None and member.isfile():
                files.add(posixpath.normpath(name))
            if (
                readmes is not None
                and member.isfile()
                and member.size <= MAX_README_CHARS * 4
                and README_FILE.match(posixpath.normpath(name))
            ):
                readmes[posixpath.normpath(name)] = archive.extractfile(member).read()
            if posixpath.normpath(name) != "package/package.json" or not member.isfile():
                continue
            if manifest is not None:
                raise Invalid("Package tarball has package/package.json twice.")
            if member.size > MAX_MANIFEST_BYTES:
                raise Invalid("package.json in the tarball is too large.")
            manifest = archive.extractfile(member).read()
    if manifest is None:
        raise Invalid("Package tarball has no package/package.json.")
    try:
        package_json = json.loads(manifest)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Invalid("package.json in the tarball is not valid JSON.") from exc
    if not isinstance(package_json, dict):
        raise Invalid("package.json in the tarball is not a JSON object.")
    return package_json
