from django.apps import AppConfig


class NugetConfig(AppConfig):
    name = "packages_nuget"
    label = "packages_nuget"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from packages_nuget.format import NugetFormat
        from registry import formats

        formats.register(NugetFormat())
