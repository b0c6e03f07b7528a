from django.apps import AppConfig


class PypiConfig(AppConfig):
    name = "packages_pypi"
    label = "packages_pypi"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from packages_pypi.format import PypiFormat
        from registry import formats

        formats.register(PypiFormat())
