"""Web UI routes. Mounted last in registry/urls.py: `<ref:ref>` catches project paths, so
every more specific route (API, admin, other pages) must come before this module."""

from django.contrib.auth import views as auth_views
from django.urls import path

from web import cleanup_pages, views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("<ref:project_ref>/-/settings/packages_and_registries/cleanup", cleanup_pages.cleanup_policy_page),
    path(
        "users/sign_in",
        auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True, next_page="/"),
        name="login",
    ),
    path("users/sign_out", auth_views.LogoutView.as_view(next_page="/users/sign_in"), name="logout"),
    path("-/user_settings/personal_access_tokens", views.personal_tokens, name="personal_tokens"),
    path(
        "-/user_settings/personal_access_tokens/<int:token_id>/revoke",
        views.personal_token_revoke,
        name="personal_token_revoke",
    ),
    # Groups.
    path("groups/<ref:ref>/-/packages", views.group_packages, name="group_packages"),
    path("groups/<ref:ref>/-/settings/general", views.group_general, name="group_general"),
    path("groups/<ref:ref>/-/settings/repository", views.group_deploy_tokens, name="group_deploy_tokens"),
    path(
        "groups/<ref:ref>/-/settings/repository/deploy_tokens/<int:token_id>/revoke",
        views.group_deploy_token_revoke,
        name="group_deploy_token_revoke",
    ),
    path("groups/<ref:ref>/-/settings/access_tokens", views.group_access_tokens, name="group_access_tokens"),
    path(
        "groups/<ref:ref>/-/settings/access_tokens/<int:token_id>/revoke",
        views.group_access_token_revoke,
        name="group_access_token_revoke",
    ),
    path("groups/<ref:ref>", views.group_home, name="group_home"),
    # Projects.
    path("<ref:ref>/-/packages", views.project_packages, name="project_packages"),
    path("<ref:ref>/-/packages/<int:package_id>", views.package_detail, name="package_detail"),
    path("<ref:ref>/-/packages/<int:package_id>/delete", views.package_delete, name="package_delete"),
    path(
        "<ref:ref>/-/packages/<int:package_id>/files/<int:file_id>/delete",
        views.package_file_delete,
        name="package_file_delete",
    ),
    path("<ref:ref>/-/settings/repository", views.project_deploy_tokens, name="project_deploy_tokens"),
    path(
        "<ref:ref>/-/settings/repository/deploy_tokens/<int:token_id>/revoke",
        views.project_deploy_token_revoke,
        name="project_deploy_token_revoke",
    ),
    path("<ref:ref>/-/settings/access_tokens", views.project_access_tokens, name="project_access_tokens"),
    path(
        "<ref:ref>/-/settings/access_tokens/<int:token_id>/revoke",
        views.project_access_token_revoke,
        name="project_access_token_revoke",
    ),
    path("<ref:ref>/-/settings/ci_cd", views.job_token_scope, name="job_token_scope"),
    path("<ref:ref>/-/settings/general", views.project_general, name="project_general"),
    path("<ref:ref>/-/settings/packages_and_registries", views.package_settings, name="package_settings"),
    path("<ref:ref>", views.project_home, name="project_home"),
]
