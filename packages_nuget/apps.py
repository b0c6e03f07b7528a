from registry import apps


class NugetConfig(apps.FormatAppConfig):
    name = "packages_nuget"
    format_class = "packages_nuget.format.NugetFormat"
