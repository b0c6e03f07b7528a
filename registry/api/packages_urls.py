"""Packages REST API routes, mounted under api/v4/ before the management API (whose bare
`projects/<ref>` route would otherwise swallow them)."""

from django.urls import path

from registry.api import packages

urlpatterns = [
    path("projects/<ref:ref>/packages", packages.PackagesView.as_view(target_kind="project")),
    path("groups/<ref:ref>/packages", packages.PackagesView.as_view(target_kind="group")),
    path("projects/<ref:ref>/packages/settings", packages.PackageSettingsView.as_view()),
    path("projects/<ref:ref>/packages/<int:package_id>", packages.PackageDetailView.as_view()),
    path("projects/<ref:ref>/packages/<int:package_id>/package_files", packages.PackageFilesView.as_view()),
    path(
        "projects/<ref:ref>/packages/<int:package_id>/package_files/<int:file_id>",
        packages.PackageFileDetailView.as_view(),
    ),
]
