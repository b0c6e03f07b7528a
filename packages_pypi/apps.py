from registry import apps


class PypiConfig(apps.FormatAppConfig):
    name = "packages_pypi"
    format_class = "packages_pypi.format.PypiFormat"
