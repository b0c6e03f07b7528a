"""Group routes (read only), under `api/v4/groups/<ref>/-/packages/pypi/`; file links point at
the project routes."""

from django.urls import path

from packages_pypi.views import SimpleIndexView, SimpleProjectView
from registry.views import GROUP

urlpatterns = [
    path("simple", SimpleIndexView.as_view(scope=GROUP)),
    path("simple/", SimpleIndexView.as_view(scope=GROUP)),
    path("simple/<str:package_name>", SimpleProjectView.as_view(scope=GROUP)),
    path("simple/<str:package_name>/", SimpleProjectView.as_view(scope=GROUP)),
]
