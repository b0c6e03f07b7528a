"""The format contract, and the in-process registry of formats.

A format app subclasses PackageFormat and registers an instance from its AppConfig.ready().
The core mounts its URL modules and applies its rules; it never imports a format app.
"""

import enum
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.http import JsonResponse

from accounts.authentication import CHALLENGE
from registry.errors import Conflict, Invalid, RegistryError


class DuplicateRule(enum.Enum):
    REJECT_VERSION = "reject_version"  # a second publish of a version is refused (npm)
    REJECT_FILE = "reject_file"  # a second file of the same name is refused (PyPI)
    PROJECT_SETTING = "project_setting"  # the project's duplicate setting decides (generic, ...)
    ALLOW = "allow"  # re-uploads always accepted, newest served (Maven metadata, SNAPSHOTs)


@dataclass
class FileDraft:
    file_name: str
    spool: object  # registry.spool.Spool


@dataclass
class PackageDraft:
    """What a parser hands to the write service: validated, nothing stored yet."""

    name: str
    version: str
    files: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    status: str = "default"


class PackageFormat:
    name = ""
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    # Dotted paths of URL modules (with `urlpatterns`), mounted by registry/urls.py.
    project_urls = None
    project_root_urls = None  # mounted at `.../packages/<name>` without a trailing slash (twine)
    group_urls = None
    instance_urls = None
    name_pattern = re.compile(r"^[A-Za-z0-9._+-]+$")
    version_pattern = re.compile(r"^(?!.*\.\.)[\w+.-]+$")
    max_name_length = 255

    @property
    def max_file_size(self):
        return settings.PACKAGE_MAX_FILE_SIZE.get(self.name, 0)

    def normalize_name(self, name):
        return name

    def normalize_version(self, version):
        return version

    def validate_name(self, name):
        if not name or name in (".", "..") or len(name) > self.max_name_length or not self.name_pattern.match(name):
            raise Invalid("400 Bad request - package_name is invalid")

    def validate_version(self, version):
        if not version or len(version) > 255 or not self.version_pattern.match(version):
            raise Invalid("400 Bad request - package_version is invalid")

    def duplicate_rule_for(self, draft):
        """The rule for one upload; a format may exempt some (Maven: metadata, SNAPSHOTs)."""
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
    def save_format_rows(self, version, draft):
        """Store format-specific rows for a newly published version."""

    def on_version_deleted(self, version):
        """React to a version being removed (move npm `latest`, rewrite maven-metadata...)."""


_formats = {}


def register(package_format):
    if package_format.name in _formats:
        raise RuntimeError(f"format {package_format.name!r} registered twice")
    _formats[package_format.name] = package_format


def get(name):
    return _formats[name]


def find(name):
    return _formats.get(name)


def all_formats():
    return list(_formats.values())


__all__ = [
    "DuplicateRule",
    "FileDraft",
    "PackageDraft",
    "PackageFormat",
    "all_formats",
    "get",
    "register",
]
