"""PyPI: twine's legacy upload, PEP 503/691 simple index, PEP 658 core metadata."""

from functools import cached_property

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from packages_pypi import parsers
from registry.errors import Invalid, RegistryError
from registry.formats import DuplicateRule, PackageFormat


class PypiFormat(PackageFormat):
    name = "pypi"
    duplicate_rule = DuplicateRule.REJECT_FILE
    project_urls = "packages_pypi.urls_project"
    group_urls = "packages_pypi.urls_group"
    # twine posts to the bare prefix `.../packages/pypi` (no trailing slash).
    project_root_urls = "packages_pypi.urls_project_root"
    virtual_urls = "packages_pypi.urls_virtual"
    virtual_upstream_url_help = "The simple index, e.g. https://pypi.org/simple"
    name_pattern = parsers.NAME_PATTERN
    label = "PyPI"
    default_max_file_size = 3 * 1024 * 1024 * 1024

    @cached_property
    def virtual(self):
        from packages_pypi.virtual import PypiVirtualSupport

        return PypiVirtualSupport(self)

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

    def save_format_rows(self, version, draft, files):
        """`draft` is a packages_pypi.parsers.PypiDraft: its core metadata goes with its file."""
        from packages_pypi.models import Distribution

        for package_file in files:
            Distribution.objects.create(
                package_file=package_file,
                requires_python=draft.requires_python,
                core_metadata=draft.core_metadata,
                core_metadata_sha256=draft.core_metadata_sha256,
            )

    # PEP 592: a yanked release stays in the index (marked), pip takes it only when pinned.
    withdrawal = "yank"
    withdrawal_undone = "unyank"

    def version_details(self, version, files):
        from packages_pypi import details
        from packages_pypi.models import Distribution

        row = Distribution.objects.filter(package_file__in=[f.pk for f in files]).order_by("-package_file_id").first()
        return details.details(row.core_metadata if row else "")

    def virtual_registry_snippets(self, url):
        scheme, host_path = url.split("://", 1)
        return [("pip.conf", f"[global]\nindex-url = {scheme}://__token__:${{TOKEN}}@{host_path}/simple/")]

    def install_snippets(self, base, project, name, version, file_names=()):
        scheme, host_path = base.split("://", 1)[0], base.split("://", 1)[-1]
        index = self.packages_url(f"{scheme}://__token__:${{TOKEN}}@{host_path}", project) + "/simple"
        return [
            ("pip.conf", f"[global]\nindex-url = {index}"),
            ("pip install", f"pip install --index-url {index} --no-deps {name}=={version}"),
        ]
