from django.apps import AppConfig
from django.utils.module_loading import import_string


class RegistryConfig(AppConfig):
    name = "registry"
    default_auto_field = "django.db.models.BigAutoField"
    default = True  # the app's config; FormatAppConfig below is a base for format apps

    def ready(self):
        from registry import invalidation
        from registry.virtual import changes

        invalidation.connect()
        changes.connect()


class FormatAppConfig(AppConfig):
    """The AppConfig of a format app: it names its PackageFormat class (`format_class`, a dotted
    path, imported once the apps are loaded) and registers one instance in registry.formats.

        class ExampleConfig(apps.FormatAppConfig):
            name = "packages_example"
            format_class = "packages_example.format.ExampleFormat"

    Subclass it through the module (`from registry import apps`), so that the format's apps
    module defines exactly one AppConfig. It lives here rather than in registry.formats, which
    imports models (through accounts.authentication) and so cannot be imported while apps load.
    """

    default_auto_field = "django.db.models.BigAutoField"
    format_class = ""

    def ready(self):
        from registry import formats

        formats.register(import_string(self.format_class)())
