from registry import apps


class GenericConfig(apps.FormatAppConfig):
    name = "packages_generic"
    format_class = "packages_generic.format.GenericFormat"
