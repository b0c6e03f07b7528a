"""The bare project prefix `api/v4/projects/<ref>/packages/pypi` (no trailing slash): twine's
upload URL as GitLab documents it."""

from django.urls import path

from packages_pypi.views import UploadView

urlpatterns = [
    path("", UploadView.as_view()),
]
