"""Project-level npm routes. Scoped names arrive as `@scope%2fname`, decoded to `@scope/name`
before routing, so a raw slash and `%2f` are the same here."""

from django.urls import re_path

from packages_npm import views

NAME = r"(?P<package_name>(?:@[^/]+/)?[^/@][^/]*)"
FILE = r"(?P<file_name>(?:@[^/]+/)?[^/]+\.tgz)"
AUDIT = r"^-/npm/v1/security/(?:advisories/bulk|audits/quick)$"
SEARCH = r"^-/v1/search$"

urlpatterns = [
    re_path(SEARCH, views.SearchView.as_view()),
    re_path(AUDIT, views.AuditView.as_view()),
    re_path(rf"^-/package/{NAME}/dist-tags$", views.DistTagsView.as_view()),
    re_path(rf"^-/package/{NAME}/dist-tags/(?P<tag>[^/]+)$", views.DistTagView.as_view()),
    # single-version unpublish, last step; npm often doubles the project prefix here
    re_path(
        rf"^(?:api/v4/projects/(?P<inner_ref>[^/]+)/packages/npm/)?{NAME}/-/{FILE}/-rev/(?P<rev>[^/]+)$",
        views.TarballRevisionView.as_view(),
    ),
    re_path(rf"^{NAME}/-/{FILE}$", views.TarballView.as_view()),
    re_path(rf"^{NAME}/-rev/(?P<rev>[^/]+)$", views.RevisionView.as_view()),
    re_path(rf"^{NAME}$", views.PackumentView.as_view()),
]
