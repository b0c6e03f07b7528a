"""Virtual registry routes: `api/v4/virtual_registries/packages/npm/<id>/...` (read-only)."""

from django.urls import re_path

from packages_npm import views
from packages_npm.urls_project import AUDIT, FILE, NAME

urlpatterns = [
    re_path(r"^-/ping$", views.VirtualPingView.as_view()),
    re_path(AUDIT, views.VirtualAuditView.as_view()),
    re_path(rf"^-/package/{NAME}/dist-tags$", views.VirtualDistTagsView.as_view()),
    re_path(rf"^{NAME}/-/{FILE}$", views.VirtualTarballView.as_view()),
    re_path(rf"^{NAME}$", views.VirtualPackumentView.as_view()),
]
