from registry import apps


class GolangConfig(apps.FormatAppConfig):
    name = "packages_golang"
    format_class = "packages_golang.format.GolangFormat"
