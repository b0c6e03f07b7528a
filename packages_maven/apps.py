from registry import apps


class MavenConfig(apps.FormatAppConfig):
    name = "packages_maven"
    format_class = "packages_maven.format.MavenFormat"
