"""Project-level Conan routes: `v1/ping` and GitLab's Conan v2 API. A recipe is
`name/version/user/channel` in URLs (`_/_` without user and channel)."""

from django.urls import re_path

from packages_conan import views

RECIPE = r"v2/conans/(?P<recipe>[^/]+/[^/]+/[^/]+/[^/]+)"
RREV = rf"{RECIPE}/revisions/(?P<rrev>[^/]+)"
PACKAGE = rf"{RREV}/packages/(?P<package_id>[^/]+)"
PREV = rf"{PACKAGE}/revisions/(?P<prev>[^/]+)"
PATH = r"(?P<path>[^/]+(?:/[^/]+)*)"

urlpatterns = [
    re_path(r"^v1/ping$", views.PingView.as_view()),
    re_path(r"^v2/users/authenticate$", views.AuthenticateView.as_view()),
    re_path(r"^v2/users/check_credentials$", views.CheckCredentialsView.as_view()),
    re_path(r"^v2/conans/search$", views.SearchView.as_view()),
    re_path(rf"^{PREV}/files/{PATH}$", views.PackageFileView.as_view()),
    re_path(rf"^{PREV}/files$", views.PackageFilesView.as_view()),
    re_path(rf"^{PREV}$", views.PackageRevisionView.as_view()),
    re_path(rf"^{PACKAGE}/revisions$", views.PackageRevisionsView.as_view()),
    re_path(rf"^{PACKAGE}/latest$", views.PackageLatestView.as_view()),
    re_path(rf"^{RREV}/packages$", views.PackagesView.as_view()),
    re_path(rf"^{RREV}/search$", views.PackageSearchView.as_view()),
    re_path(rf"^{RREV}/files/{PATH}$", views.RecipeFileView.as_view()),
    re_path(rf"^{RREV}/files$", views.RecipeFilesView.as_view()),
    re_path(rf"^{RREV}$", views.RecipeRevisionView.as_view()),
    re_path(rf"^{RECIPE}/revisions$", views.RecipeRevisionsView.as_view()),
    re_path(rf"^{RECIPE}/latest$", views.RecipeLatestView.as_view()),
    re_path(rf"^{RECIPE}/search$", views.PackageSearchView.as_view()),
    re_path(rf"^{RECIPE}$", views.RecipeView.as_view()),
]
