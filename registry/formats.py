"""The format contract, and the in-process registry of formats.

A format app subclasses PackageFormat and names it in its AppConfig (registry.apps.FormatAppConfig),
which registers an instance when the apps are ready.
The core mounts its URL modules and applies its rules; it never imports a format app.
"""

import enum
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.http import JsonResponse

from accounts.authentication import CHALLENGE, accept_token_header
from registry.errors import Conflict, Invalid, RegistryError


class DuplicateRule(enum.Enum):
    REJECT_VERSION = "reject_version"  # a second publish of a version is refused
    REJECT_FILE = "reject_file"  # a second file of the same name is refused
    PROJECT_SETTING = "project_setting"  # the project's duplicate setting for the format decides
    ALLOW = "allow"  # re-uploads always accepted, newest served (metadata files, snapshots)


@dataclass
class FileDraft:
    file_name: str
    spool: object  # registry.spool.Spool


@dataclass
class PackageDraft:
    """What a parser hands to the write service: validated, nothing stored yet.

    A format that needs more (tags, a manifest, per-file metadata) declares one dataclass
    subclass of it in its own app, which its `save_format_rows` reads."""

    name: str
    version: str
    files: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    status: str = "default"


class FileKind:
    """How a virtual registry caches a path (spec §3.1)."""

    METADATA = "metadata"  # re-checked after the upstream's metadata_cache_validity_hours
    IMMUTABLE = "immutable"  # never re-fetched once cached (a released file cannot change)
    MUTABLE = "mutable"  # re-checked after the upstream's cache_validity_hours (0: never)


@dataclass(frozen=True)
class VirtualPath:
    """One path a virtual registry client asked for, as the format's VirtualSupport parsed it."""

    relative_path: str  # upstream-relative, with a leading `/`
    kind: str  # FileKind
    name: str  # the normalized package name: what local upstreams claim (spec §4.2)
    file_name: str
    checksum: str | None = None  # "sha1" etc. when this is a checksum of `base`'s bytes
    base: "VirtualPath | None" = None
    # The URL path asked of the upstream when it is not `relative_path` percent-encoded (a scoped
    # name's `/@scope%2fname`), and the Accept header sent with it.
    url_path: str | None = None
    accept: str = ""
    # A variant of one document (say an abbreviated one), cached apart from the others.
    variant: str = ""
    # For files only reachable through a metadata document, which alone lists their URL and
    # digests: that document's path (VirtualSupport.file_origin reads them from it).
    metadata: "VirtualPath | None" = None
    # Other documents that list the file just as well (another variant of `metadata`, say the
    # full document where `metadata` is the abbreviated one): when `metadata` is not cached but
    # one of these is, the file's origin is read from it instead of fetching `metadata`.
    metadata_alternates: tuple = ()

    @property
    def cache_key(self):
        """What a cache entry is keyed on: the path, and the variant when there is one."""
        return f"{self.relative_path}#{self.variant}" if self.variant else self.relative_path


class VirtualSupport:
    """What a format tells the core's virtual registries (registry.virtual) about itself.

    The core fetches, verifies, caches and serves; the format parses its paths, says which
    digests an upstream promises for a file and finds a path among local packages."""

    # Largest metadata document read from an upstream, in bytes.
    metadata_cap = 10 * 1024 * 1024
    default_metadata_cache_validity_hours = 24
    default_negative_cache_minutes = 10
    # Probed with HEAD (relative to the upstream URL) by "test connection"; 2xx and 404 succeed.
    test_path = ""
    # URLs of public registries whose files never change: cache_validity_hours is 0 for them.
    public_roots = ()
    # Hosts a remote upstream created for one of these URL prefixes may place files on (its
    # `file_hosts`, spec §5.1) unless the caller says otherwise: {URL prefix: (host, ...)}.
    file_host_presets = {}
    # Whether remote upstreams take a Bearer `auth_token` instead of a username and password.
    accepts_auth_token = False

    def __init__(self, package_format):
        self.format = package_format

    def parse(self, raw_path):
        """The VirtualPath for a request path (URL-decoded, no leading `/`); Invalid (400)."""
        raise NotImplementedError

    def expected_digests(self, path, headers, fetch_sidecar):
        """{algorithm: hex digest} the upstream promises for `path`'s bytes, from its response
        `headers` (lowercase names) or from documents `fetch_sidecar(relative_path)` reads from
        the same upstream (bytes, or None when it has none). Empty: nothing to check."""
        return {}

    # What upstream rules (spec §1.9) may match on, and which of them compare case-insensitively.
    rule_targets = ("name", "version")
    case_insensitive_targets = ()

    def rule_values(self, path):
        """{target: value} of a request's path for upstream rules (a target it has no value for,
        such as the version of a metadata document, is left out)."""
        return {"name": path.name}

    def claim_keys(self, name):
        """The claims that hide `name` (a normalized name) from remote upstreams: the name itself,
        and whatever else covers it (a scope)."""
        return [name]

    def implicit_claims(self, group):
        """Claims every local upstream of the top-level `group` holds from its creation on."""
        return []

    # The field of local upstreams (REST API) listing their namespace claims (spec §4.2): claims
    # that hide every remote name under them, whether or not the target holds such a name (a
    # scope, an id prefix, a group: `claimed_scopes`, `claimed_prefixes`, `claimed_group_ids`);
    # None: the format has none.
    scope_claims = None
    # How the pages name that field, and what they say an entry looks like.
    scope_claims_label = ""
    scope_claims_help = ""

    def scope_claim(self, value):
        """The claim for an entry of that field (`@acme`, `Acme.*`), or ValueError."""
        raise ValueError(value)

    def is_scope_claim(self, claim):
        """Whether a stored claim is a scope claim rather than a package name."""
        return False

    # Whether the metadata document of a file (its VirtualPath.metadata) lists the file by
    # version, so that a file the document no longer lists was removed upstream (spec §3.2.3).
    metadata_lists_files = False

    def file_origin(self, path, document, upstream_url):
        """For a path with `metadata`: (absolute URL of the file, {algorithm: hex digest}) as the
        upstream's `document` (bytes) lists it, or None when the document does not list it."""
        return None

    def promised_digests(self, path, read):
        """{algorithm: hex digest} the upstream's metadata promises for a file with `metadata`,
        beyond what `file_origin` found: `read(virtual_path)` answers the bytes of another
        document of the same upstream (fetched and cached like any), or None when it has none."""
        return {}

    def content_type(self, path):
        return "application/octet-stream"

    def local_file(self, projects, path):
        """The installable PackageFile that `path` names among `projects`' packages, or None."""
        return None

    def local_document(self, projects, path):
        """The metadata document (bytes) `path` names, built from `projects`' packages, or None."""
        return None

    # Settings of the format's own on its virtual registries: {name: default} (booleans), stored
    # in VirtualRegistry.options and set through the registries' REST API under these names.
    registry_options = {}
    # How the pages name each of them: {name: label}.
    registry_option_labels = {}

    def pin_unit(self, path):
        """The unit of files `path` belongs to (a version of a package), whose files must all come
        from the upstream that served the first of them (spec §4.3); None: not pinned."""
        return None

    def merges(self, path, options):
        """Whether `path` is a document merged from every upstream that has it (spec §4.3),
        under the registry's `options`, instead of the first upstream's."""
        return False

    def merge(self, documents):
        """One document (bytes) from several, in upstream order: `documents` is a list of
        (bytes, keeps_version), `keeps_version(version)` telling whether that upstream's rules let
        a version through."""
        raise NotImplementedError

    def local_content(self, projects, path):
        """For a file derived from a local package rather than stored as one (a PEP 658
        `.metadata`): its bytes, or None when `path` names no such file."""
        return None


@dataclass
class Dependency:
    name: str
    requirement: str = ""  # a version range, as the format writes it; empty: any


@dataclass
class DependencyGroup:
    """Dependencies of one kind or target, as the format groups them (by kind of dependency,
    by target framework, by scope...)."""

    title: str
    dependencies: list = field(default_factory=list)  # of Dependency


@dataclass
class VersionDetails:
    """What a version's page shows about it beyond names and files, as the client sent it.
    Text is raw: the pages render `readme` (its `readme_markup`: "markdown", "rst" or "text")
    and sanitize it, and show only http(s) links."""

    summary: str = ""
    readme: str = ""
    readme_markup: str = "markdown"
    license: str = ""
    links: list = field(default_factory=list)  # of (label, url)
    dependency_groups: list = field(default_factory=list)  # of DependencyGroup
    tags: list = field(default_factory=list)  # of (tag, version string): the package's tags


class PackageFormat:
    name = ""
    # The format's segment in URLs (`…/packages/<segment>/`), when it is not its name: GitLab
    # mounts some formats under a shorter word than the package type its API reports.
    url_segment = None
    # A registry.formats.VirtualSupport when the format can be served by virtual registries, with
    # the dotted path of the URL module mounted at `api/v4/virtual_registries/packages/<name>/<id>/`.
    virtual = None
    virtual_urls = None
    # What a remote upstream's URL names for this format (the pages' help text).
    virtual_upstream_url_help = ""
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    # Dotted paths of URL modules (with `urlpatterns`), mounted by registry.routes; a format app
    # names them urls_project.py, urls_project_root.py, urls_group.py and urls_instance.py.
    project_urls = None
    project_root_urls = None  # mounted at `.../packages/<name>` without a trailing slash (twine)
    group_urls = None
    instance_urls = None
    name_pattern = re.compile(r"^[A-Za-z0-9._+-]+\Z")
    version_pattern = re.compile(r"^(?!.*\.\.)[\w+.-]+\Z", re.ASCII)
    max_name_length = 255
    # Largest accepted file, in bytes (0: no limit); PACKHOUSE_<NAME>_MAX_FILE_SIZE overrides it.
    default_max_file_size = 0
    # Request headers (META keys) the format's clients send a token in, as it is (no prefix).
    token_headers = ()
    # Boolean package settings of the format's own, per project: {GitLab's field name: label}.
    # The settings API and page show them beside the duplicate settings; the format keeps them
    # (`project_settings`, `save_project_settings`).
    setting_labels = {}

    @property
    def mount(self):
        """The URL segment the core mounts the format's routes under: `url_segment`, or its name."""
        return self.url_segment or self.name

    @property
    def max_file_size(self):
        """The deployment's limit (settings.PACKAGE_MAX_FILE_SIZE, filled from the environment), or
        the format's default."""
        return getattr(settings, "PACKAGE_MAX_FILE_SIZE", {}).get(self.name, self.default_max_file_size)

    @property
    def label(self):
        """How pages name the format; a format spells its own name by declaring `label`."""
        return self.name.capitalize()

    @property
    def has_duplicate_setting(self):
        """Whether projects choose if duplicates are allowed (a row per project in the settings)."""
        return self.duplicate_rule is DuplicateRule.PROJECT_SETTING

    def packages_url(self, base, project):
        """The format's project endpoint, `<base>/api/v4/projects/<id>/packages/<mount>`."""
        return f"{base}/api/v4/projects/{project.pk}/packages/{self.mount}"

    def install_snippets(self, base, project, name, version, file_names=()):
        """(title, text) pairs shown on a version's page: how to configure a client for this
        server (`base`, e.g. `https://packages.example.com`) and install the version."""
        return []

    def virtual_registry_snippets(self, url):
        """(title, text) pairs shown on a virtual registry's page: how to configure a client for
        the registry at `url` (`<base>/api/v4/virtual_registries/packages/<name>/<id>`)."""
        return []

    def normalize_name(self, name):
        return name

    def normalize_version(self, version):
        return version

    # The write service (registry.services.publish) calls both for every publish, so a view
    # calls them itself only to refuse early (before reading a body) or on reads.
    def validate_name(self, name):
        if not name or name in (".", "..") or len(name) > self.max_name_length or not self.name_pattern.match(name):
            raise Invalid("400 Bad request - package_name is invalid")

    def validate_version(self, version):
        if not version or len(version) > 255 or not self.version_pattern.match(version):
            raise Invalid("400 Bad request - package_version is invalid")

    def duplicate_rule_for(self, draft):
        """The rule for one upload; a format may exempt some (its metadata files, snapshots)."""
        return self.duplicate_rule

    def duplicate_error(self):
        return Conflict("409 Duplicate package is not allowed")

    def error_response(self, error: RegistryError, request):
        """The client's own error shape; GitLab's `{"message": ...}` by default."""
        response = JsonResponse({"message": error.message}, status=error.status)
        if error.status == 401:
            response["WWW-Authenticate"] = CHALLENGE
        return response

    # Hooks the write service and the cleanup tasks call in the same transaction.
    def save_format_rows(self, version, draft, files):
        """Store format-specific rows for a publish: `version` the PackageVersion (new, or the
        existing one a file was added to), `files` the PackageFile rows just stored, in the order
        of `draft.files`."""

    def on_version_deleted(self, version):
        """React to a version being removed (move a `latest` tag, rewrite a metadata file...)."""

    def project_settings(self, project):
        """{field: bool} for every field of `setting_labels`."""
        return {}

    def save_project_settings(self, project, values):
        """Store {field: bool} (some fields of `setting_labels`), inside the caller's transaction."""

    # Taking a version out of sight without deleting it (a yank, an unlisting): the verb
    # pages and the REST API name it with, and its undoing; "" when the format has none.
    withdrawal = ""
    withdrawal_undone = ""

    def on_withdrawn(self, version, withdrawn):
        """Called inside the write's transaction once `version.metadata["withdrawn"]` was set
        (`withdrawn` True) or removed; a format may change the version's status here (a version
        hidden from listings but still installable by exact version is Status.HIDDEN)."""

    # What pages show about a version (read only, outside any write).
    def version_details(self, version, files):
        """A VersionDetails for `version` (a PackageVersion; `files` its PackageFile rows, blobs
        loaded): its README or description, license, links, dependencies and tags, from what
        the format stored at publish time."""
        return VersionDetails()

    def file_url(self, base, project, version, package_file):
        """Where a client downloads `package_file` of `version` from this server; None when the
        format has no download URL for it."""
        return None


_formats = {}


def register(package_format):
    if package_format.name in _formats:
        raise RuntimeError(f"format {package_format.name!r} registered twice")
    _formats[package_format.name] = package_format
    for header in package_format.token_headers:
        accept_token_header(header)


def get(name):
    return _formats[name]


def find(name):
    return _formats.get(name)


def all_formats():
    return list(_formats.values())


def with_own_settings():
    """The formats with package settings of their own (`setting_labels`), in name order."""
    return sorted((f for f in _formats.values() if f.setting_labels), key=lambda f: f.name)


def with_virtual_support():
    """The formats virtual registries can serve, in name order."""
    return sorted((f for f in _formats.values() if f.virtual is not None), key=lambda f: f.name)


def with_duplicate_setting():
    """The formats whose duplicate rule is a per-project setting, in name order."""
    return sorted((f for f in _formats.values() if f.has_duplicate_setting), key=lambda f: f.name)


__all__ = [
    "Dependency",
    "DependencyGroup",
    "DuplicateRule",
    "VersionDetails",
    "FileDraft",
    "FileKind",
    "VirtualPath",
    "VirtualSupport",
    "PackageDraft",
    "PackageFormat",
    "all_formats",
    "get",
    "with_duplicate_setting",
    "with_virtual_support",
    "register",
]
