"""Group-level npm routes: packument, dist-tags (tag writes act on the package's project), audit stubs."""

from django.urls import re_path

from packages_npm import views
from packages_npm.urls_project import AUDIT, FILE, NAME, SEARCH

urlpatterns = [
    re_path(SEARCH, views.GroupSearchView.as_view()),
    re_path(AUDIT, views.GroupAuditView.as_view()),
    re_path(rf"^-/package/{NAME}/dist-tags$", views.GroupDistTagsView.as_view()),
    re_path(rf"^-/package/{NAME}/dist-tags/(?P<tag>[^/]+)$", views.GroupDistTagView.as_view()),
    re_path(rf"^{NAME}/-/{FILE}$", views.GroupTarballView.as_view()),
    re_path(rf"^{NAME}$", views.GroupPackumentView.as_view()),
]
