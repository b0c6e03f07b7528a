"""Group-level Go routes: the GOPROXY protocol over every project under the group the caller may
pull from (read-only)."""

from django.urls import re_path

from packages_golang import views
from packages_golang.urls_project import LATEST, LIST, VERSION_FILE

urlpatterns = [
    re_path(LIST, views.GroupListView.as_view()),
    re_path(LATEST, views.GroupLatestView.as_view()),
    re_path(VERSION_FILE, views.GroupVersionFileView.as_view()),
]
