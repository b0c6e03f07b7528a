"""Instance-level npm routes: packument, dist-tags (tag writes act on the package's project), audit
stubs; only `@<top-level group>/name` resolves."""

from django.urls import re_path

from packages_npm import views
from packages_npm.urls_project import AUDIT, FILE, NAME, SEARCH

urlpatterns = [
    re_path(SEARCH, views.InstanceSearchView.as_view()),
    re_path(AUDIT, views.InstanceAuditView.as_view()),
    re_path(rf"^-/package/{NAME}/dist-tags$", views.InstanceDistTagsView.as_view()),
    re_path(rf"^-/package/{NAME}/dist-tags/(?P<tag>[^/]+)$", views.InstanceDistTagView.as_view()),
    re_path(rf"^{NAME}/-/{FILE}$", views.InstanceTarballView.as_view()),
    re_path(rf"^{NAME}$", views.InstancePackumentView.as_view()),
]
