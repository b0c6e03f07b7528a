"""NuGet: case-insensitive ids, NuGet-normalised versions, duplicates by project setting (409)."""

from packages_nuget import parsers
from registry.errors import Conflict, Invalid
from registry.formats import DuplicateRule, PackageFormat


class NugetFormat(PackageFormat):
    name = "nuget"
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    project_urls = "packages_nuget.urls"
    group_urls = "packages_nuget.urls_group"
    name_pattern = parsers.NAME
    version_pattern = parsers.VERSION

    def normalize_name(self, name):
        return name.lower()

    def normalize_version(self, version):
        return parsers.normalize_version(version)

    def validate_name(self, name):
        if not parsers.valid_name(name):
            raise Invalid("400 Bad request - package_name is invalid")

    def validate_version(self, version):
        if not parsers.valid_version(version):
            raise Invalid("400 Bad request - package_version is invalid")

    def duplicate_error(self):
        return Conflict("409 Conflict - A package with the same name and version already exists")

    def save_format_rows(self, version, draft):
        from packages_nuget.models import NugetMetadatum

        spec = getattr(draft, "nuspec", None)
        if spec is None or getattr(draft, "symbols", False):
            return
        NugetMetadatum.objects.update_or_create(
            version=version,
            defaults={
                "authors": spec.authors,
                "description": spec.description,
                "summary": spec.summary,
                "title": spec.title,
                "tags": spec.tags,
                "project_url": spec.project_url,
                "license_url": spec.license_url,
                "icon_url": spec.icon_url,
                "dependency_groups": spec.dependency_groups,
                "nuspec": spec.text,
            },
        )
