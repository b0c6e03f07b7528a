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

from registry.formats import DuplicateRule, PackageFormat

VERSIONLESS = "~metadata"
METADATA = "maven-metadata.xml"


class MavenFormat(PackageFormat):
    name = "maven"
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    project_urls = "packages_maven.urls"
    group_urls = "packages_maven.group_urls"
    instance_urls = "packages_maven.instance_urls"
    version_pattern = re.compile(r"^(?!.*\.\.)[\w+.-]+$", re.ASCII)

    def duplicate_rule_for(self, draft):
        """Metadata files and SNAPSHOT versions are re-deployed by every `mvn deploy`: always
        accepted (newest served). Release files follow the project's duplicate setting."""
        if draft.version == VERSIONLESS or draft.version.endswith("-SNAPSHOT"):
            return DuplicateRule.ALLOW
        if all(f.file_name == METADATA for f in draft.files):
            return DuplicateRule.ALLOW
        return self.duplicate_rule
