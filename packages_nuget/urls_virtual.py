"""Virtual registry routes: `api/v4/virtual_registries/packages/nuget/<id>/...` (v3, read-only)."""

from django.urls import re_path

from packages_nuget import views
from packages_nuget.urls_project import NAME, VERSION

urlpatterns = [
    re_path(r"^index\.json$", views.VirtualServiceIndexView.as_view()),
    re_path(r"^query$", views.VirtualQueryView.as_view()),
    re_path(rf"^metadata/{NAME}/index\.json$", views.VirtualRegistrationIndexView.as_view()),
    re_path(rf"^metadata/{NAME}/{VERSION}\.json$", views.VirtualRegistrationLeafView.as_view()),
    re_path(rf"^download/{NAME}/index\.json$", views.VirtualVersionsView.as_view()),
    re_path(rf"^download/{NAME}/{VERSION}/(?P<file_name>[^/]+)$", views.VirtualDownloadView.as_view()),
]
