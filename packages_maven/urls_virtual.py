"""Virtual registry routes: `api/v4/virtual_registries/packages/maven/<id>/<path>` (GET, HEAD)."""

from django.urls import path

from packages_maven.views import MavenVirtualView

urlpatterns = [
    path("<path:maven_path>", MavenVirtualView.as_view()),
]
