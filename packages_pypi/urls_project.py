"""Project routes, under `api/v4/projects/<ref>/packages/pypi/`."""

from django.urls import path

from packages_pypi.views import FileView, SimpleIndexView, SimpleProjectView, UploadView

urlpatterns = [
    path("", UploadView.as_view()),
    path("simple", SimpleIndexView.as_view()),
    path("simple/", SimpleIndexView.as_view()),
    path("simple/<str:package_name>", SimpleProjectView.as_view()),
    path("simple/<str:package_name>/", SimpleProjectView.as_view()),
    path("files/<str:sha256>/<str:file_name>", FileView.as_view()),
]
