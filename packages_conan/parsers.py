"""Conan 2: recipe references, revisions, package ids, the files of a revision, and how they are
kept as the core's rows. Pure: no database, no request.

A recipe `name/version@user/channel` is one package (named `name`, or `name@user/channel` when it
has a user and channel) and one version; every file of every revision is a file of that version,
named by where it belongs:

    <rrev>/export/<path>                       a recipe revision's file (conanfile.py, ...)
    <rrev>/package/<package_id>/<prev>/<path>  a package revision's file (conaninfo.txt, ...)

A revision exists for clients once its `conanmanifest.txt` is there: Conan uploads it last.
"""

import re
from dataclasses import dataclass

from registry.errors import Invalid
from registry.formats import PackageDraft

# Conan 2's own rule for names, versions, users and channels (RecipeReference.validate_ref), with
# versions of one character allowed too (Conan accepts `1` as a version).
NAME = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_+.-]{1,100}\Z")
VERSION = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_+.-]{0,100}\Z")
NONE = "_"  # the user or channel of a reference that has none, as Conan spells it in URLs
# Revisions: an md5 (`revision_mode = "hash"`) or a commit id (`"scm"`); package ids: a sha1.
REVISION = re.compile(r"^[0-9a-zA-Z]{1,64}\Z")
PACKAGE_ID = re.compile(r"^[0-9a-zA-Z]{1,64}\Z")
MANIFEST = "conanmanifest.txt"
CONANINFO = "conaninfo.txt"
RECIPE_FILES = re.compile(r"^(?:conanfile\.py|conanmanifest\.txt|conan_(?:export|sources)\.t(?:gz|xz|zst))\Z")
PACKAGE_FILES = re.compile(r"^(?:conaninfo\.txt|conanmanifest\.txt|conan_package\.t(?:gz|xz|zst))\Z")
METADATA_SEGMENT = re.compile(r"^[A-Za-z0-9_.+@~-]+\Z")
MAX_METADATA_PATH = 512
MAX_CONANINFO_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    user: str | None = None
    channel: str | None = None

    @property
    def package_name(self):
        """The core's package name: `name`, or `name@user/channel`."""
        return f"{self.name}@{self.user}/{self.channel}" if self.user else self.name

    def __str__(self):
        return f"{self.name}/{self.version}@{self.user}/{self.channel}" if self.user else f"{self.name}/{self.version}"


def parse_recipe(path):
    """`name/version/user/channel` (a URL's four segments, `_/_` for none) -> Recipe; Invalid."""
    parts = path.split("/") if isinstance(path, str) else []
    if len(parts) != 4:
        raise Invalid("400 Bad request - invalid recipe reference")
    name, version, user, channel = parts
    if not NAME.match(name):
        raise Invalid(f"400 Bad request - invalid package name '{name}'")
    if not VERSION.match(version):
        raise Invalid(f"400 Bad request - invalid package version '{version}'")
    if (user == NONE) != (channel == NONE):
        raise Invalid("400 Bad request - a reference has both a user and a channel, or neither")
    if user == NONE:
        return Recipe(name, version)
    for what, value in (("user", user), ("channel", channel)):
        if not NAME.match(value):
            raise Invalid(f"400 Bad request - invalid package {what} '{value}'")
    return Recipe(name, version, user, channel)


def package_name_of(path):
    """The core's package name of a recipe path, or None when it is not one (for `reads`)."""
    try:
        return parse_recipe(path).package_name
    except Invalid:
        return None


def recipe_of(package_name, version):
    """The Recipe a stored package name and version stand for."""
    name, _, rest = package_name.partition("@")
    user, _, channel = rest.partition("/")
    return Recipe(name, version, user or None, channel or None)


def valid_package_name(package_name):
    name, at, rest = package_name.partition("@")
    if not at:
        return bool(NAME.match(name))
    user, slash, channel = rest.partition("/")
    return bool(slash and NAME.match(name) and NAME.match(user) and NAME.match(channel))


def check_revision(revision, what="revision"):
    if not REVISION.match(revision or ""):
        raise Invalid(f"400 Bad request - invalid {what}")


def check_package_id(package_id):
    if not PACKAGE_ID.match(package_id or ""):
        raise Invalid("400 Bad request - invalid package id")


def check_file_path(path, allowed):
    """One of the files Conan uploads (`allowed`), or a `metadata/...` file."""
    if allowed.match(path):
        return
    segments = path.split("/")
    if (
        len(segments) >= 2
        and segments[0] == "metadata"
        and len(path) <= MAX_METADATA_PATH
        and all(s not in (".", "..") and METADATA_SEGMENT.match(s) for s in segments[1:])
    ):
        return
    raise Invalid(f"400 Bad request - '{path}' is not a file of a Conan revision")


def recipe_file_name(rrev, path):
    return f"{rrev}/export/{path}"


def package_file_name(rrev, package_id, prev, path):
    return f"{rrev}/package/{package_id}/{prev}/{path}"


def recipe_prefix(rrev):
    return f"{rrev}/export/"


def package_prefix(rrev, package_id, prev):
    return f"{rrev}/package/{package_id}/{prev}/"


def split_file_name(file_name):
    """A stored file name -> (rrev, package_id or None, prev or None, path), or None."""
    parts = file_name.split("/")
    if len(parts) >= 3 and parts[1] == "export":
        return parts[0], None, None, "/".join(parts[2:])
    if len(parts) >= 5 and parts[1] == "package":
        return parts[0], parts[2], parts[3], "/".join(parts[4:])
    return None


def is_metadata(path):
    return path.startswith("metadata/")


@dataclass
class ConanDraft(PackageDraft):
    """One uploaded file of a revision. `conaninfo`: the text of a package's conaninfo.txt, kept
    on the version for package searches (key `<rrev>:<package_id>:<prev>`)."""

    path: str = ""
    conaninfo_key: str | None = None
    conaninfo: str | None = None


def read_conaninfo(spool):
    """The text of an uploaded conaninfo.txt (small, UTF-8), or Invalid."""
    if spool.size > MAX_CONANINFO_BYTES:
        raise Invalid("400 Bad request - conaninfo.txt is too large")
    try:
        return spool.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("400 Bad request - conaninfo.txt is not UTF-8 text") from exc
