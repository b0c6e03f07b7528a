"""Pure npm parsing: names, versions, the publish document and the tarball. No ORM, no HTTP."""

import base64
import binascii
import json
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field

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


def valid_name(name):
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and NAME.fullmatch(name) is not None


def scope_of(name):
    """`acme` for `@acme/left-pad`, None for an unscoped name."""
    match = NAME.fullmatch(name or "")
    return match.group(1) if match else None


def basename(name):
    return name.rsplit("/", 1)[-1]


def tarball_name(name, version):
    """The stored file name: `left-pad-1.0.0.tgz` (the registry's own naming, scope dropped)."""
    return f"{basename(name)}-{version}.tgz"


def valid_version(version):
    return isinstance(version, str) and len(version) <= 255 and SEMVER.fullmatch(version) is not None


def valid_tag(tag):
    return isinstance(tag, str) and TAG.fullmatch(tag) is not None and not valid_version(tag)


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


def parse_publish(body, url_name):
    """Validate an `npm publish` body (packages_npm.publish_body.PublishBody); returns
    (draft, spool), the spool of the tarball taken from the body. The caller cleans it up."""
    document = body.document
    if not isinstance(document, dict):
        raise Invalid("Invalid publish document.")
    name = document.get("name", url_name)
    if name != url_name:
        raise Invalid("Package name in the body does not match the URL.")
    if not valid_name(name):
        raise Invalid("Package name is invalid.")
    versions = document.get("versions")
    if not isinstance(versions, dict) or not versions:
        raise Invalid("Version is empty.")
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
    attachment = attachments.get(f"{name}-{version}.tgz")
    if not isinstance(attachment, dict):
        raise Invalid(f"Attachment {name}-{version}.tgz not given.")
    dist = manifest.get("dist") if isinstance(manifest.get("dist"), dict) else {}
    shasum = dist.get("shasum")
    if not isinstance(shasum, str) or not shasum:
        raise Invalid("dist.shasum not given.")
    sha512 = integrity_sha512_hex(dist.get("integrity"))

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
        package_json = read_tarball_manifest(spool.path)
        if package_json.get("name") != name or package_json.get("version") != version:
            raise Invalid("package.json in the tarball does not match the package name and version.")
        metadata = clean_metadata(manifest, package_json)
        dist_tags = document.get("dist-tags")
        dist_tags = dist_tags if isinstance(dist_tags, dict) else {}
        tags = [tag for tag, value in dist_tags.items() if value == version and valid_tag(tag)] or ["latest"]
        draft = NpmDraft(
            name=name,
            version=version,
            files=[FileDraft(file_name=tarball_name(name, version), spool=spool)],
            metadata=metadata,
            dist_tags=tags,
        )
    except BaseException:
        spool.cleanup()
        raise
    return draft, spool


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


def read_tarball_manifest(path):
    """Open a package tarball safely and return its `package/package.json` as a dict.

    Refuses: not gzip, not tar, absolute or `..` member names, links out of the archive, device
    and fifo members, a missing, doubled, oversized or non-JSON package.json.
    """
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            raise Invalid("Package tarball is not gzip-compressed.")
    manifest = None
    try:
        with tarfile.open(path, mode="r:gz") as archive:
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
                if posixpath.normpath(name) != "package/package.json" or not member.isfile():
                    continue
                if manifest is not None:
                    raise Invalid("Package tarball has package/package.json twice.")
                if member.size > MAX_MANIFEST_BYTES:
                    raise Invalid("package.json in the tarball is too large.")
                manifest = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise Invalid("Package tarball is not a valid gzip-compressed tar archive.") from exc
    if manifest is None:
        raise Invalid("Package tarball has no package/package.json.")
    try:
        package_json = json.loads(manifest)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("package.json in the tarball is not valid JSON.") from exc
    if not isinstance(package_json, dict):
        raise Invalid("package.json in the tarball is not a JSON object.")
    return package_json
