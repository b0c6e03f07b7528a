"""PyPI: twine's legacy upload, PEP 503/691 simple index, PEP 658 core metadata."""

from dataclasses import dataclass

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from packages_pypi import parsers
from registry.errors import Invalid, RegistryError
from registry.formats import DuplicateRule, FileDraft, PackageFormat


@dataclass
class DistributionDraft(FileDraft):
    """A file plus what the index needs about it: its core metadata and Requires-Python."""

    core_metadata: str = ""
    core_metadata_sha256: str = ""
    requires_python: str = ""


class PypiFormat(PackageFormat):
    name = "pypi"
    duplicate_rule = DuplicateRule.REJECT_FILE
    project_urls = "packages_pypi.urls"
    group_urls = "packages_pypi.group_urls"
    # twine posts to the bare prefix `.../packages/pypi` (no trailing slash).
    project_root_urls = "packages_pypi.root_urls"
    name_pattern = parsers.NAME_PATTERN

    def normalize_name(self, name):
        return canonicalize_name(name)

    def normalize_version(self, version):
        """PEP 440 equality: `1.0`, `1.0.0` and `v1.0` are one release."""
        try:
            return canonicalize_version(Version(version))
        except InvalidVersion:
            return version

    def validate_version(self, version):
        parsers.parse_version(version)

    def duplicate_error(self):
        # twine --skip-existing recognises a 400 whose text says "already exist".
        return Invalid("400 Bad request - File already exists")

    def error_response(self, error: RegistryError, request):
        response = super().error_response(error, request)
        # twine prints the reason phrase (PyPI puts its message there): make it say why.
        reason = error.message.split(" - ", 1)[-1] if " - " in error.message else ""
        reason = "".join(ch for ch in reason if 32 <= ord(ch) < 127)[:200]
        if reason:
            response.reason_phrase = reason
        return response

    def save_format_rows(self, version, draft):
        from packages_pypi.models import Distribution

        for file_draft in draft.files:
            package_file = version.files.filter(file_name=file_draft.file_name).order_by("-id").first()
            Distribution.objects.create(
                package_file=package_file,
                requires_python=file_draft.requires_python,
                core_metadata=file_draft.core_metadata,
                core_metadata_sha256=file_draft.core_metadata_sha256,
            )
