"""npm: scoped names, SemVer versions, a second publish of a version refused with 403."""

import json
import re
from functools import cached_property

from packages_npm import parsers
from registry.errors import Forbidden, Invalid, RegistryError
from registry.formats import DuplicateRule, PackageFormat

_STATUS_PREFIX = re.compile(r"^\d{3} ")


class NpmFormat(PackageFormat):
    name = "npm"
    duplicate_rule = DuplicateRule.REJECT_VERSION
    project_urls = "packages_npm.urls_project"
    group_urls = "packages_npm.urls_group"
    instance_urls = "packages_npm.urls_instance"
    virtual_urls = "packages_npm.urls_virtual"
    virtual_upstream_url_help = "The registry's root, e.g. https://registry.npmjs.org"
    name_pattern = parsers.NAME
    version_pattern = parsers.SEMVER
    max_name_length = parsers.MAX_NAME_LENGTH
    label = "npm"
    default_max_file_size = 500 * 1024 * 1024

    @cached_property
    def virtual(self):
        from packages_npm.virtual import NpmVirtualSupport

        return NpmVirtualSupport(self)

    def validate_name(self, name):
        if not parsers.valid_new_name(name):
            raise Invalid("Package name is invalid.")

    def validate_version(self, version):
        if not parsers.valid_version(version):
            raise Invalid("Version is invalid: it must follow SemVer 2.0.")

    def duplicate_error(self):
        return Forbidden("Package already exists.")

    def error_response(self, error: RegistryError, request):
        """npm shows `error` to the user; GitLab's clients read `message`: send both."""
        response = super().error_response(error, request)  # status and the 401 challenge
        text = _STATUS_PREFIX.sub("", error.message, count=1)
        response.content = json.dumps({"error": text, "message": error.message})
        return response

    def save_format_rows(self, version, draft, files):
        """`draft` is a packages_npm.parsers.NpmDraft: its dist-tags now name this version, its
        README is kept for the version's page."""
        from packages_npm.models import NpmDistTag, NpmReadme

        for tag in draft.dist_tags:
            NpmDistTag.objects.update_or_create(package_id=version.package_id, tag=tag, defaults={"version": version})
        if draft.readme:
            NpmReadme.objects.update_or_create(version=version, defaults={"text": draft.readme})

    def on_version_deleted(self, version):
        from packages_npm.models import NpmDistTag

        NpmDistTag.objects.filter(version=version).delete()

    def version_details(self, version, files):
        from packages_npm import details
        from packages_npm.models import NpmDistTag, NpmReadme

        readme = NpmReadme.objects.filter(version=version).values_list("text", flat=True).first() or ""
        tags = NpmDistTag.objects.filter(package_id=version.package_id).values_list("tag", "version__version")
        return details.details(version.metadata or {}, readme, list(tags))

    def virtual_registry_snippets(self, url):
        # npm sends the token to every URL below the registry's (the rewritten tarball URLs too).
        return [(".npmrc", f"registry={url}/\n//{url.split('://', 1)[-1]}/:_authToken=${{TOKEN}}")]

    def install_snippets(self, base, project, name, version, file_names=()):
        scope = name.split("/", 1)[0] if name.startswith("@") else "@scope"
        host_path = base.split("://", 1)[-1]
        return [
            (
                ".npmrc",
                f"{scope}:registry={self.packages_url(base, project)}/\n"
                f"//{self.packages_url(host_path, project)}/:_authToken=${{TOKEN}}",
            ),
            ("npm install", f"npm install {name}@{version}"),
        ]
