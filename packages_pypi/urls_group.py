"""Group routes (read only), under `api/v4/groups/<ref>/-/packages/pypi/`; the simple index's file
links point at the project routes, and `files/<sha256>/<file name>` serves any file below the
group the caller may pull (GitLab's group file route)."""

from django.urls import path

from packages_pypi.views import FileView, SimpleIndexView, SimpleProjectView
from registry.views import GROUP

urlpatterns = [
    path("simple", SimpleIndexView.as_view(scope=GROUP)),
    path("simple/", SimpleIndexView.as_view(scope=GROUP)),
    path("simple/<str:package_name>", SimpleProjectView.as_view(scope=GROUP)),
    path("simple/<str:package_name>/", SimpleProjectView.as_view(scope=GROUP)),
    path("files/<str:sha256>/<str:file_name>", FileView.as_view(scope=GROUP)),
]
