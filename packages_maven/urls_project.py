"""Project routes: `api/v4/projects/<ref>/packages/maven/<path>` (PUT, GET, HEAD)."""

from django.urls import path

from packages_maven.views import MavenFileView

urlpatterns = [
    path("<path:maven_path>", MavenFileView.as_view()),
]
