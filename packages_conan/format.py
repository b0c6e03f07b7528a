"""Conan 2: recipes `name/version@user/channel` with recipe and package revisions, over GitLab's
Conan v2 API at project level. A revision's file is never replaced (409); an identical one is
accepted again (Conan retries uploads), and `metadata/` files may change."""

from packages_conan import parsers
from registry.errors import Conflict, Invalid
from registry.formats import DuplicateRule, PackageFormat


class ConanFormat(PackageFormat):
    name = "conan"
    duplicate_rule = DuplicateRule.REJECT_FILE
    project_urls = "packages_conan.urls_project"
    label = "Conan"
    default_max_file_size = 3 * 1024 * 1024 * 1024  # GitLab's conan_max_file_size

    def validate_name(self, name):
        if not parsers.valid_package_name(name):
            raise Invalid("400 Bad request - invalid package name")

    def validate_version(self, version):
        if not parsers.VERSION.match(version):
            raise Invalid("400 Bad request - invalid package version")

    def duplicate_rule_for(self, draft):
        if parsers.is_metadata(getattr(draft, "path", "")):
            return DuplicateRule.ALLOW
        return self.duplicate_rule

    def duplicate_error(self):
        return Conflict("409 Conflict - this file of the revision is already uploaded with other content")

    def save_format_rows(self, version, draft, files):
        """`draft` is a packages_conan.parsers.ConanDraft: a package's conaninfo.txt is kept on
        the version, for package searches."""
        if draft.conaninfo is None:
            return
        metadata = dict(version.metadata or {})
        metadata["conaninfo"] = {**metadata.get("conaninfo", {}), draft.conaninfo_key: draft.conaninfo}
        version.metadata = metadata
        version.save(update_fields=["metadata", "updated_at"])

    def install_snippets(self, base, project, name, version, file_names=()):
        reference = parsers.recipe_of(name, version)
        remote = self.packages_url(base, project)
        return [
            (
                "conan remote",
                f"conan remote add packhouse {remote}\n"
                "conan remote login packhouse <username> -p ${TOKEN}   # any name for an access token",
            ),
            ("conan install", f"conan install --requires={reference} -r packhouse"),
            ("conanfile.txt", f"[requires]\n{reference}"),
        ]
