"""Project-level NuGet routes (mounted at api/v4/projects/<ref>/packages/nuget/)."""

from django.urls import re_path

from packages_nuget import views

NAME = r"(?P<package_name>[-+._a-zA-Z0-9]+)"
VERSION = r"(?P<package_version>[-+._a-zA-Z0-9]+)"

urlpatterns = [
    re_path(r"^$", views.PublishView.as_view()),
    re_path(r"^index\.json$", views.ServiceIndexView.as_view()),
    re_path(r"^symbolpackage/?$", views.SymbolPublishView.as_view()),
    re_path(r"^query$", views.QueryView.as_view()),
    re_path(
        r"^symbolfiles/(?P<file_name>[^/]+)/(?P<signature>[0-9A-Fa-f]{32,40})/(?P<same_file_name>[^/]+)$",
        views.SymbolFileView.as_view(),
    ),
    re_path(rf"^metadata/{NAME}/index\.json$", views.MetadataIndexView.as_view()),
    re_path(rf"^metadata/{NAME}/{VERSION}\.json$", views.MetadataLeafView.as_view()),
    re_path(rf"^download/{NAME}/index\.json$", views.DownloadIndexView.as_view()),
    re_path(rf"^download/{NAME}/{VERSION}/(?P<file_name>[^/]+)$", views.DownloadFileView.as_view()),
    re_path(r"^v2/?$", views.V2RootView.as_view()),
    re_path(r"^v2/\$metadata$", views.V2MetadataView.as_view()),
    re_path(r"^v2/FindPackagesById\(\)$", views.V2FindByIdView.as_view()),
    re_path(r"^v2/Packages\(\)$", views.V2PackagesView.as_view()),
    re_path(r"^v2/Packages$", views.V2PackagesView.as_view()),
    re_path(r"^v2/Search\(\)$", views.V2SearchView.as_view()),
    re_path(rf"^v2/Packages\(Id='{NAME}',Version='{VERSION}'\)$", views.V2PackageView.as_view()),
    re_path(rf"^v2/download/{NAME}/{VERSION}/?$", views.V2DownloadView.as_view()),
    re_path(rf"^{NAME}/{VERSION}$", views.DeleteView.as_view()),
]
