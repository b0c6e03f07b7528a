from django.urls import path

from packages_generic.views import GenericFileView

urlpatterns = [
    path("<str:package_name>/<str:package_version>/<path:file_name>", GenericFileView.as_view()),
]
