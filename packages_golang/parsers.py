"""Go modules: module paths and their case-encoding, versions, and the module zip as Gitea
accepts it for upload. Pure: no database, no request.

A module zip holds every file under `<module path>@<version>/`, with the module's `go.mod` at
its root (the layout `go mod download` caches and the GOPROXY protocol serves).
"""

import functools
import re

from registry.archives import budget_for, open_zip
from registry.errors import Invalid

# Go's module.CheckPath, simplified: slash-separated elements of letters, digits and `-._~`,
# the first one a lower-case domain name with a dot.
ELEMENT = re.compile(r"^[A-Za-z0-9._~-]+\Z")
FIRST_ELEMENT = re.compile(r"^[a-z0-9][a-z0-9.-]*\.[a-z0-9.-]*[a-z0-9]\Z")
MAX_PATH_LENGTH = 255
# Semantic versions with Go's `v`; build metadata only as `+incompatible`.
_N = r"(?:0|[1-9][0-9]*)"
_PRE = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
VERSION = re.compile(rf"^v({_N})\.{_N}\.{_N}(?:-{_PRE}(?:\.{_PRE})*)?(\+incompatible)?\Z")
MAJOR_SUFFIX = re.compile(r"/v([0-9]+)\Z")
MODULE_DIRECTIVE = re.compile(r'^\s*module\s+(?:"([^"]+)"|(\S+))\s*(?://.*)?$', re.MULTILINE)
MAX_GO_MOD_BYTES = 16 * 1024 * 1024  # what the go command accepts


def valid_module_path(path):
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH or not path.isascii():
        return False
    elements = path.split("/")
    if not FIRST_ELEMENT.match(elements[0]):
        return False
    return all(ELEMENT.match(e) and e not in (".", "..") and not e.endswith(".") for e in elements)


def valid_version(version):
    return isinstance(version, str) and bool(VERSION.match(version))


def escape(path):
    """The module path's case-encoding in URLs: each upper-case letter as `!` and its lower case."""
    return re.sub(r"[A-Z]", lambda match: "!" + match.group(0).lower(), path)


def unescape(escaped):
    """A case-encoded path (or version) -> itself, or None when it is not a valid encoding."""
    if not isinstance(escaped, str) or re.search(r"[A-Z]|![^a-z]|!\Z", escaped):
        return None
    return re.sub(r"!([a-z])", lambda match: match.group(1).upper(), escaped)


def module_of(escaped):
    """The module path of a URL's case-encoded path, or None (for `reads`)."""
    path = unescape(escaped)
    return path if valid_module_path(path) else None


def check_major_version(path, version):
    """`/vN` (N >= 2) at the end of the path must be the version's major; a major of 2 or more
    without it must be `+incompatible` (Go's rule)."""
    major = int(VERSION.match(version).group(1))
    suffix = MAJOR_SUFFIX.search(path)
    if suffix is not None and int(suffix.group(1)) >= 2:
        if major != int(suffix.group(1)):
            raise Invalid(f"400 Bad request - version {version} does not match the module path's /v{suffix.group(1)}")
    elif major >= 2 and not version.endswith("+incompatible"):
        raise Invalid(f"400 Bad request - version {version} needs a /v{major} module path or +incompatible")


def _parts(version):
    match = re.match(r"^v(\d+)\.(\d+)\.(\d+)(?:-([^+]*))?", version)
    numbers = tuple(int(n) for n in match.groups()[:3])
    pre = match.group(4)
    return numbers, pre


def compare_versions(left, right):
    """Semantic version order (a pre-release before its release; `+incompatible` ignored)."""
    (a_numbers, a_pre), (b_numbers, b_pre) = _parts(left), _parts(right)
    if a_numbers != b_numbers:
        return -1 if a_numbers < b_numbers else 1
    if a_pre == b_pre:
        return 0
    if a_pre is None or b_pre is None:
        return 1 if a_pre is None else -1
    for x, y in zip(a_pre.split("."), b_pre.split("."), strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(a_pre.split(".")) > len(b_pre.split("."))) - (len(a_pre.split(".")) < len(b_pre.split(".")))


version_key = functools.cmp_to_key(compare_versions)


def latest(versions):
    """`@latest`: the highest release, else the highest pre-release; None without versions."""
    releases = [v for v in versions if _parts(v)[1] is None]
    candidates = releases or list(versions)
    return max(candidates, key=version_key) if candidates else None


def module_directive(go_mod):
    """The module path a go.mod declares, or None."""
    match = MODULE_DIRECTIVE.search(go_mod)
    return (match.group(1) or match.group(2)) if match else None


def read_module_zip(path, max_file_size):
    """The module zip at `path` -> (module path, version, go.mod bytes). Raises Invalid."""
    unreadable = "400 Bad request - the body is not a zip archive"
    prefix = None
    go_mod = None
    with open_zip(path, "module zip", max_bytes=budget_for(max_file_size), unreadable=unreadable) as archive:
        for info in archive.members:
            name = info.filename
            if prefix is None:  # `<module path>@<version>/`: up to the first slash after the `@`
                at = name.find("@")
                slash = name.find("/", at) if at > 0 else -1
                if slash < 0:
                    raise Invalid("400 Bad request - the zip's files must be under <module>@<version>/")
                prefix = name[: slash + 1]
            if not name.startswith(prefix) or "\\" in name or ".." in name.split("/") or name.startswith("/"):
                raise Invalid(f"400 Bad request - {name!r} is not under {prefix!r}")
            if name == f"{prefix}go.mod":
                if info.file_size > MAX_GO_MOD_BYTES:
                    raise Invalid("400 Bad request - go.mod is too large")
                with archive.open(info) as handle:
                    go_mod = handle.read()
    if prefix is None:
        raise Invalid("400 Bad request - the zip's files must be under <module>@<version>/")
    module, _, version = prefix[:-1].rpartition("@")
    if not valid_module_path(module):
        raise Invalid(f"400 Bad request - invalid module path {module!r}")
    if not valid_version(version):
        raise Invalid(f"400 Bad request - invalid version {version!r}: it must be v<semver>")
    check_major_version(module, version)
    if go_mod is None:
        raise Invalid(f"400 Bad request - the zip has no {prefix}go.mod")
    try:
        declared = module_directive(go_mod.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Invalid("400 Bad request - go.mod is not UTF-8") from exc
    if declared != module:
        raise Invalid(f"400 Bad request - go.mod declares module {declared!r}, the zip holds {module!r}")
    return module, version, go_mod
