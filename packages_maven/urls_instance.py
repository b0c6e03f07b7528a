"""Instance routes (read only): `api/v4/packages/maven/<path>`, across every project the
caller may pull from."""

from django.urls import path

from packages_maven.views import MavenReadView
from registry.views import INSTANCE

urlpatterns = [
    path("<path:maven_path>", MavenReadView.as_view(scope=INSTANCE)),
]
