from registry import apps


class NpmConfig(apps.FormatAppConfig):
    name = "packages_npm"
    format_class = "packages_npm.format.NpmFormat"
