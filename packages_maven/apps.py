from django.apps import AppConfig


class MavenConfig(AppConfig):
    name = "packages_maven"
    label = "packages_maven"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from packages_maven.format import MavenFormat
        from registry import formats

        formats.register(MavenFormat())
