"""NuGet: case-insensitive ids, NuGet-normalised versions, duplicates by project setting (409)."""

from functools import cached_property

from packages_nuget import parsers
from registry.errors import Conflict, Invalid
from registry.formats import DuplicateRule, PackageFormat


class NugetFormat(PackageFormat):
    name = "nuget"
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    project_urls = "packages_nuget.urls_project"
    group_urls = "packages_nuget.urls_group"
    virtual_urls = "packages_nuget.urls_virtual"
    virtual_upstream_url_help = "The v3 service index, e.g. https://api.nuget.org/v3/index.json"
    name_pattern = parsers.NAME
    version_pattern = parsers.VERSION
    label = "NuGet"
    default_max_file_size = 500 * 1024 * 1024
    token_headers = ("HTTP_X_NUGET_APIKEY",)  # `X-NuGet-ApiKey`, sent by `nuget push`
    setting_labels = {"nuget_symbol_server_enabled": "NuGet: serve symbol files (symbol server)"}

    @cached_property
    def virtual(self):
        from packages_nuget.virtual import NugetVirtualSupport

        return NugetVirtualSupport(self)

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

    def project_settings(self, project):
        from packages_nuget.models import NugetSymbolServer

        row = NugetSymbolServer.objects.filter(project=project).first()
        return {"nuget_symbol_server_enabled": bool(row and row.enabled)}

    def save_project_settings(self, project, values):
        from packages_nuget.models import NugetSymbolServer

        if "nuget_symbol_server_enabled" in values:
            NugetSymbolServer.objects.update_or_create(
                project=project, defaults={"enabled": values["nuget_symbol_server_enabled"]}
            )

    def save_format_rows(self, version, draft, files):
        """`draft` is a packages_nuget.parsers.NugetDraft: the nuspec's fields (not a symbol
        package's) become the version's NugetMetadatum; a symbol package's portable PDBs become
        NugetSymbol rows of its stored file."""
        from packages_nuget.models import NugetMetadatum, NugetSymbol

        if draft.symbols and files:
            NugetSymbol.objects.bulk_create(
                NugetSymbol(
                    package_file=files[0],
                    entry=symbol.entry,
                    file_name=symbol.file_name,
                    signature=symbol.signature,
                    checksum=symbol.checksum,
                    size=symbol.size,
                )
                for symbol in draft.symbol_files
            )
        spec = draft.nuspec
        if spec is None or draft.symbols:
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
                "license": spec.license,
                "readme": draft.readme,
            },
        )

    # nuget.org's unlisting: out of search and of version ranges, installable by exact version.
    withdrawal = "unlist"
    withdrawal_undone = "relist"

    def on_withdrawn(self, version, withdrawn):
        from registry.models import Status

        status = Status.HIDDEN if withdrawn else Status.DEFAULT
        if version.status in (Status.DEFAULT, Status.HIDDEN) and version.status != status:
            version.status = status
            version.save(update_fields=["status", "updated_at"])

    def version_details(self, version, files):
        from packages_nuget import details
        from packages_nuget.models import NugetMetadatum

        return details.details(NugetMetadatum.objects.filter(version=version).first())

    def virtual_registry_snippets(self, url):
        return [
            (
                "nuget.config",
                '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <packageSources>\n'
                f'    <add key="packhouse-virtual" value="{url}/index.json" />\n  </packageSources>\n'
                "  <packageSourceCredentials>\n    <packhouse-virtual>\n"
                '      <add key="Username" value="USERNAME" />\n'
                '      <add key="ClearTextPassword" value="${TOKEN}" />\n    </packhouse-virtual>\n'
                "  </packageSourceCredentials>\n</configuration>",
            )
        ]

    def install_snippets(self, base, project, name, version, file_names=()):
        index = f"{self.packages_url(base, project)}/index.json"
        return [
            (
                "nuget.config",
                '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <packageSources>\n'
                f'    <add key="packhouse" value="{index}" />\n  </packageSources>\n  <packageSourceCredentials>\n'
                '    <packhouse>\n      <add key="Username" value="USERNAME" />\n'
                '      <add key="ClearTextPassword" value="${TOKEN}" />\n    </packhouse>\n'
                "  </packageSourceCredentials>\n</configuration>",
            ),
            (
                "dotnet nuget add source",
                f'dotnet nuget add source "{index}" --name packhouse --username USERNAME '
                "--password ${TOKEN} --store-password-in-clear-text\n"
                f"dotnet add package {name} --version {version} --source packhouse",
            ),
        ]
