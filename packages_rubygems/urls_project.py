"""Project-level RubyGems routes: the source's root, the legacy index, the compact index, the
`.gem` files and the push/yank API."""

from django.urls import re_path

from packages_rubygems import views

urlpatterns = [
    re_path(r"^$", views.RootView.as_view()),
    re_path(r"^(?P<which>specs|latest_specs|prerelease_specs)\.4\.8\.gz$", views.SpecsView.as_view()),
    re_path(r"^quick/Marshal\.4\.8/(?P<stem>[^/]+)\.gemspec\.rz$", views.QuickSpecView.as_view()),
    re_path(r"^gems/(?P<file_name>[^/]+\.gem)$", views.GemFileView.as_view()),
    re_path(r"^versions$", views.VersionsView.as_view()),
    re_path(r"^names$", views.NamesView.as_view()),
    re_path(r"^info/(?P<package_name>[^/]+)$", views.InfoView.as_view()),
    re_path(r"^api/v1/gems$", views.PushView.as_view()),
    re_path(r"^api/v1/gems/yank$", views.YankView.as_view()),
]
