from django.apps import AppConfig


class NpmConfig(AppConfig):
    name = "packages_npm"
    label = "packages_npm"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from packages_npm.format import NpmFormat
        from registry import formats

        formats.register(NpmFormat())
