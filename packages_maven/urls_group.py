"""Group routes (read only): `api/v4/groups/<ref>/-/packages/maven/<path>`."""

from django.urls import path

from packages_maven.views import MavenReadView
from registry.views import GROUP

urlpatterns = [
    path("<path:maven_path>", MavenReadView.as_view(scope=GROUP)),
]
