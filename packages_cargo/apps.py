from registry import apps


class CargoConfig(apps.FormatAppConfig):
    name = "packages_cargo"
    format_class = "packages_cargo.format.CargoFormat"
