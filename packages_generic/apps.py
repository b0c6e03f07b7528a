from django.apps import AppConfig


class GenericConfig(AppConfig):
    name = "packages_generic"
    label = "packages_generic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from packages_generic.format import GenericFormat
        from registry import formats

        formats.register(GenericFormat())
