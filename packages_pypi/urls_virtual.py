"""Virtual registry routes: `api/v4/virtual_registries/packages/pypi/<id>/...` (read-only)."""

from django.urls import path

from packages_pypi import views

urlpatterns = [
    path("simple", views.VirtualSimpleIndexView.as_view()),
    path("simple/", views.VirtualSimpleIndexView.as_view()),
    path("simple/<str:package_name>", views.VirtualSimpleProjectView.as_view()),
    path("simple/<str:package_name>/", views.VirtualSimpleProjectView.as_view()),
    path("files/<str:project>/<str:key>/<str:file_name>", views.VirtualFileView.as_view()),
]
