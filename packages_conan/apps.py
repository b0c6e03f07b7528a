from registry import apps


class ConanConfig(apps.FormatAppConfig):
    name = "packages_conan"
    format_class = "packages_conan.format.ConanFormat"
