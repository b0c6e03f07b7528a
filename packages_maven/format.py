"""Maven repository layout under /api/v4/.../packages/maven/: PUT and GET of files by path.

Package model (as GitLab): the package name is the `groupId/artifactId` path
(`com/example/my-app`), the version the last path segment. Files outside any version (the
artifact-level `maven-metadata.xml`, plugin-group metadata) belong to a hidden, versionless
marker version `VERSIONLESS` of the package named after their full path: for an artifact
that is the same Package row as its versions, so one package holds `1.0`, `1.1-SNAPSHOT`
and the marker. The marker is not a valid Maven version (`~` is outside the version
pattern), so it can never collide with a published one.
"""

import re
from functools import cached_property

from registry.errors import Invalid
from registry.formats import DuplicateRule, PackageFormat

VERSIONLESS = "~metadata"
METADATA = "maven-metadata.xml"


class MavenFormat(PackageFormat):
    name = "maven"
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    project_urls = "packages_maven.urls_project"
    group_urls = "packages_maven.urls_group"
    instance_urls = "packages_maven.urls_instance"
    virtual_urls = "packages_maven.urls_virtual"
    virtual_upstream_url_help = "The repository's root, e.g. https://repo1.maven.org/maven2"
    version_pattern = re.compile(r"^(?!.*\.\.)[\w+.-]+\Z", re.ASCII)
    label = "Maven"
    default_max_file_size = 3 * 1024 * 1024 * 1024

    @cached_property
    def virtual(self):
        from packages_maven.virtual import MavenVirtualSupport

        return MavenVirtualSupport(self)

    def validate_name(self, name):
        """`com/example/my-app`: the slashes are part of the name (packages_maven.parsers)."""
        from packages_maven import parsers

        if not parsers.valid_name(name):
            raise Invalid("400 Bad request - package_name is invalid")

    def validate_version(self, version):
        """A version segment, or the versionless marker the write service sees for metadata
        files outside any version (no client can send it: `~` is not in a version segment)."""
        if version != VERSIONLESS:
            super().validate_version(version)

    def duplicate_rule_for(self, draft):
        """Metadata files and SNAPSHOT versions are re-deployed by every `mvn deploy`: always
        accepted (newest served). Release files follow the project's duplicate setting."""
        if draft.version == VERSIONLESS or draft.version.endswith("-SNAPSHOT"):
            return DuplicateRule.ALLOW
        if all(f.file_name == METADATA for f in draft.files):
            return DuplicateRule.ALLOW
        return self.duplicate_rule

    def on_version_deleted(self, version):
        """Served artifact metadata follows the live versions (packages_maven.views), so
        nothing needs rewriting. Once the last real version of a package is gone, the uploaded
        artifact metadata (which lists only deleted versions) is marked for destruction too."""
        from registry import services
        from registry.models import INSTALLABLE, PackageVersion

        if version.version == VERSIONLESS:
            return
        others = PackageVersion.objects.filter(package_id=version.package_id).exclude(pk=version.pk)
        if others.filter(status__in=INSTALLABLE).exclude(version=VERSIONLESS).exists():
            return
        marker = others.filter(version=VERSIONLESS, status__in=INSTALLABLE).first()
        if marker is not None and marker.files.filter(file_name=METADATA).exists():
            if not marker.files.exclude(file_name=METADATA).exists():
                services.mark_version_for_destruction(marker)

    def virtual_registry_snippets(self, url):
        # Every repository, Maven Central included, is asked through the virtual registry.
        return [
            (
                "settings.xml",
                "<settings>\n  <servers>\n    <server>\n      <id>packhouse-virtual</id>\n      <configuration>\n"
                "        <httpHeaders>\n          <property>\n            <name>Private-Token</name>\n"
                "            <value>${env.TOKEN}</value>\n          </property>\n        </httpHeaders>\n"
                "      </configuration>\n    </server>\n  </servers>\n  <mirrors>\n    <mirror>\n"
                f"      <id>packhouse-virtual</id>\n      <mirrorOf>*</mirrorOf>\n      <url>{url}</url>\n"
                "    </mirror>\n  </mirrors>\n</settings>",
            )
        ]

    def install_snippets(self, base, project, name, version, file_names=()):
        group_id, _, artifact_id = name.rpartition("/")
        group_id = group_id.replace("/", ".") or "com.example"
        return [
            (
                "settings.xml",
                "<settings>\n  <servers>\n    <server>\n      <id>packhouse-maven</id>\n      <configuration>\n"
                "        <httpHeaders>\n          <property>\n            <name>Private-Token</name>\n"
                "            <value>${env.TOKEN}</value>\n          </property>\n        </httpHeaders>\n"
                "      </configuration>\n    </server>\n  </servers>\n</settings>",
            ),
            (
                "pom.xml",
                "<repositories>\n  <repository>\n    <id>packhouse-maven</id>\n"
                f"    <url>{self.packages_url(base, project)}</url>\n"
                f"  </repository>\n</repositories>\n<dependency>\n  <groupId>{group_id}</groupId>\n"
                f"  <artifactId>{artifact_id}</artifactId>\n  <version>{version}</version>\n</dependency>",
            ),
        ]

    def version_details(self, version, files):
        """From the version's POM, the newest `.pom` among its files."""
        from packages_maven import details
        from registry import services

        poms = [f for f in files if f.file_name.endswith(".pom")]
        if not poms:
            return details.details(None)
        pom = max(poms, key=lambda f: (f.created_at, f.pk))
        try:
            data = services.read_small_file(pom, max_size=details.parsers.MAX_XML_SIZE)
        except ValueError:
            return details.details(None)
        return details.details(data)
