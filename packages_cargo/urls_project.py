"""Project-level Cargo routes: the sparse index under `index/`, the web API under `api/v1/`
(config.json's `api` is the format's root, `dl` is `api/v1/crates`)."""

from django.urls import re_path

from packages_cargo import views

NAME = r"(?P<package_name>[^/]+)"
VERSION = r"(?P<version>[^/]+)"
# `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd`; the view checks the prefix against the name.
INDEX_FILE = rf"^index/(?P<prefix>1|2|3/[^/]|[^/]{{2}}/[^/]{{2}})/{NAME}$"

urlpatterns = [
    re_path(r"^index/config\.json$", views.ConfigView.as_view()),
    re_path(INDEX_FILE, views.IndexFileView.as_view()),
    re_path(r"^api/v1/crates/new$", views.PublishView.as_view()),
    re_path(rf"^api/v1/crates/{NAME}/{VERSION}/download$", views.DownloadView.as_view()),
    re_path(rf"^api/v1/crates/{NAME}/{VERSION}/yank$", views.YankView.as_view()),
    re_path(rf"^api/v1/crates/{NAME}/{VERSION}/unyank$", views.UnyankView.as_view()),
]
