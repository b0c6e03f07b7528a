"""Group-level NuGet routes: service index, registration, search and symbol files (read-only)."""

from django.urls import re_path

from packages_nuget import views
from packages_nuget.urls_project import NAME, VERSION

urlpatterns = [
    re_path(r"^index\.json$", views.GroupServiceIndexView.as_view()),
    re_path(r"^query$", views.GroupQueryView.as_view()),
    re_path(
        r"^symbolfiles/(?P<file_name>[^/]+)/(?P<signature>[0-9A-Fa-f]{32,40})/(?P<same_file_name>[^/]+)$",
        views.GroupSymbolFileView.as_view(),
    ),
    re_path(rf"^metadata/{NAME}/index\.json$", views.GroupMetadataIndexView.as_view()),
    re_path(rf"^metadata/{NAME}/{VERSION}\.json$", views.GroupMetadataLeafView.as_view()),
]
