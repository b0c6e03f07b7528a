"""Cargo: the sparse registry protocol. Names are unique ignoring case and `-`/`_`; a version,
once published, is never published again (yanked or not), as on crates.io."""

import json
import re

from packages_cargo import parsers
from registry.errors import Conflict, Invalid, RegistryError
from registry.formats import DuplicateRule, PackageFormat

_STATUS_PREFIX = re.compile(r"^\d{3} (?:[A-Za-z ]+ - )?")
REGISTRY_NAME = "packhouse"  # the name snippets give the registry in Cargo's configuration


class CargoFormat(PackageFormat):
    name = "cargo"
    duplicate_rule = DuplicateRule.REJECT_VERSION
    project_urls = "packages_cargo.urls_project"
    group_urls = "packages_cargo.urls_group"
    name_pattern = parsers.NAME
    version_pattern = parsers.SEMVER
    max_name_length = parsers.MAX_NAME_LENGTH
    label = "Cargo"
    default_max_file_size = 10 * 1024 * 1024  # crates.io's limit

    def normalize_name(self, name):
        return parsers.normalize_name(name)

    def normalize_version(self, version):
        return parsers.normalize_version(version)

    def validate_name(self, name):
        if not parsers.valid_name(name):
            raise Invalid(f"invalid crate name `{name}`")

    def validate_version(self, version):
        if not parsers.valid_version(version):
            raise Invalid(f"invalid version `{version}`: it must follow SemVer 2.0")

    # crates.io's yank: the version stays in the index, `"yanked": true`, and downloadable, so
    # existing lockfiles keep building; Cargo picks it for no new lockfile. `cargo yank` and the
    # withdrawal endpoint and page alike go through registry.services.set_withdrawn.
    withdrawal = "yank"
    withdrawal_undone = "unyank"

    def duplicate_error(self):
        return Conflict("crate version is already uploaded")

    def error_response(self, error: RegistryError, request):
        """Cargo shows `errors[].detail` of an error answer to the user."""
        response = super().error_response(error, request)  # status and the 401 challenge
        detail = _STATUS_PREFIX.sub("", error.message, count=1) or error.message
        response.content = json.dumps({"errors": [{"detail": detail}]})
        return response

    def save_format_rows(self, version, draft, files):
        """One spelling per crate: a publish of `Foo_bar` where `foo-bar` has live versions is
        refused (crates.io: "crate was previously named"); once every version of the old spelling
        is deleted, the new one takes over. Runs with the package row locked."""
        from registry.models import PackageVersion, Status

        package = version.package
        if package.name == draft.name:
            return
        others = PackageVersion.objects.filter(package=package).exclude(pk=version.pk)
        if others.exclude(status=Status.PENDING_DESTRUCTION).exists():
            raise Conflict(f"crate was previously named `{package.name}`")
        package.name = draft.name
        package.save(update_fields=["name", "updated_at"])

    def index_url(self, base, project):
        return f"sparse+{self.packages_url(base, project)}/index/"

    def install_snippets(self, base, project, name, version, file_names=()):
        registry = REGISTRY_NAME
        return [
            (
                ".cargo/config.toml",
                f'[registries.{registry}]\nindex = "{self.index_url(base, project)}"\n'
                'credential-provider = "cargo:token"',
            ),
            (
                "token",
                f"cargo login --registry {registry}   # paste the token\n"
                f"# or: export CARGO_REGISTRIES_{registry.upper()}_TOKEN=<token>",
            ),
            (
                "Cargo.toml",
                f'[dependencies]\n{name} = {{ version = "{version}", registry = "{registry}" }}',
            ),
            ("cargo add", f"cargo add {name}@{version} --registry {registry}"),
        ]
