"""Project-level Go routes: `upload`, and the GOPROXY protocol (a module path spans segments)."""

from django.urls import re_path

from packages_golang import views

MODULE = r"(?P<module>[^@]+?)"
LIST = rf"^{MODULE}/@v/list$"
LATEST = rf"^{MODULE}/@latest$"
VERSION_FILE = rf"^{MODULE}/@v/(?P<version>[^/]+)\.(?P<ext>info|mod|zip)$"

urlpatterns = [
    re_path(r"^upload$", views.UploadView.as_view()),
    re_path(LIST, views.ListView.as_view()),
    re_path(LATEST, views.LatestView.as_view()),
    re_path(VERSION_FILE, views.VersionFileView.as_view()),
]
