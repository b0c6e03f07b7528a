"""Web UI routes. Mounted last in registry/urls.py: `<ref:ref>` catches project paths, so
every more specific route (API, admin, other pages) must come before this module."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path

from web import (
    audit_pages,
    cleanup_pages,
    create_pages,
    hook_pages,
    member_pages,
    package_pages,
    search_pages,
    settings_pages,
    token_pages,
    usage_pages,
    virtual_registry_pages,
)

app_name = "web"
vrp = virtual_registry_pages
VR = "groups/<ref:ref>/-/virtual_registries/<str:format_name>"

urlpatterns = [
    path("", package_pages.dashboard, name="dashboard"),
    path("-/audit_events", audit_pages.instance_audit_events, name="instance_audit_events"),
    path("<ref:project_ref>/-/settings/packages_and_registries/cleanup", cleanup_pages.cleanup_policy_page),
    path(
        "users/sign_in",
        auth_views.LoginView.as_view(
            template_name="web/login.html",
            redirect_authenticated_user=True,
            next_page="/",
            extra_context={
                "oidc_name": getattr(settings, "OIDC_PROVIDER_NAME", None) if settings.OIDC_ISSUER else None
            },
        ),
        name="login",
    ),
    path("users/sign_out", auth_views.LogoutView.as_view(next_page="/users/sign_in"), name="logout"),
    path("-/user_settings/personal_access_tokens", token_pages.personal_tokens, name="personal_tokens"),
    path(
        "-/user_settings/personal_access_tokens/<int:token_id>/revoke",
        token_pages.personal_token_revoke,
        name="personal_token_revoke",
    ),
    path(
        "-/user_settings/personal_access_tokens/<int:token_id>/rotate",
        token_pages.personal_token_rotate,
        name="personal_token_rotate",
    ),
    path("search", search_pages.search, name="search"),
    path("groups/new", create_pages.new_group, name="new_group"),
    path("projects/new", create_pages.new_project, name="new_project"),
    # Groups.
    path("groups/<ref:ref>/-/group_members", member_pages.group_members, name="group_members"),
    path("groups/<ref:ref>/-/usage_quotas", usage_pages.group_usage, name="group_usage"),
    path(
        "groups/<ref:ref>/-/group_members/<int:user_id>", member_pages.group_member_change, name="group_member_change"
    ),
    path("groups/<ref:ref>/-/packages", package_pages.group_packages, name="group_packages"),
    path("groups/<ref:ref>/-/settings/general", settings_pages.group_general, name="group_general"),
    path("groups/<ref:ref>/-/settings/repository", token_pages.group_deploy_tokens, name="group_deploy_tokens"),
    path(
        "groups/<ref:ref>/-/settings/repository/deploy_tokens/<int:token_id>/revoke",
        token_pages.group_deploy_token_revoke,
        name="group_deploy_token_revoke",
    ),
    path("groups/<ref:ref>/-/settings/access_tokens", token_pages.group_access_tokens, name="group_access_tokens"),
    path(
        "groups/<ref:ref>/-/settings/access_tokens/<int:token_id>/revoke",
        token_pages.group_access_token_revoke,
        name="group_access_token_revoke",
    ),
    path(
        "groups/<ref:ref>/-/settings/access_tokens/<int:token_id>/rotate",
        token_pages.group_access_token_rotate,
        name="group_access_token_rotate",
    ),
    path("groups/<ref:ref>/-/hooks", hook_pages.group_hooks, name="group_hooks"),
    path("groups/<ref:ref>/-/hooks/<int:hook_id>", hook_pages.group_hook, name="group_hook"),
    path("groups/<ref:ref>/-/hooks/<int:hook_id>/test", hook_pages.group_hook_test, name="group_hook_test"),
    path("groups/<ref:ref>/-/hooks/<int:hook_id>/delete", hook_pages.group_hook_delete, name="group_hook_delete"),
    path(
        "groups/<ref:ref>/-/hooks/<int:hook_id>/deliveries/<int:delivery_id>/resend",
        hook_pages.group_hook_resend,
        name="group_hook_resend",
    ),
    path("groups/<ref:ref>/-/audit_events", audit_pages.group_audit_events, name="group_audit_events"),
    # Virtual registries of a top-level group.
    path("groups/<ref:ref>/-/virtual_registries", vrp.group_virtual_registries, name="virtual_registries"),
    path("groups/<ref:ref>/-/virtual_registries/cleanup", vrp.cleanup_policy, name="virtual_registries_cleanup"),
    path(f"{VR}/registries/new", vrp.registry_new, name="virtual_registry_new"),
    path(f"{VR}/registries/<int:registry_id>", vrp.registry_page, name="virtual_registry"),
    path(f"{VR}/registries/<int:registry_id>/delete", vrp.registry_delete),
    path(f"{VR}/registries/<int:registry_id>/cache/delete", vrp.registry_purge),
    path(f"{VR}/registries/<int:registry_id>/upstreams", vrp.registry_add_remote),
    path(f"{VR}/registries/<int:registry_id>/local_upstreams", vrp.registry_add_local),
    path(f"{VR}/registries/<int:registry_id>/registry_upstreams", vrp.registry_link),
    path(f"{VR}/registries/<int:registry_id>/registry_upstreams/<int:link_id>/up", vrp.link_up),
    path(f"{VR}/registries/<int:registry_id>/registry_upstreams/<int:link_id>/down", vrp.link_down),
    path(f"{VR}/registries/<int:registry_id>/registry_upstreams/<int:link_id>/delete", vrp.link_remove),
    path(f"{VR}/upstreams/<int:upstream_id>", vrp.upstream_page, name="virtual_upstream"),
    path(f"{VR}/upstreams/<int:upstream_id>/test", vrp.upstream_test),
    path(f"{VR}/upstreams/<int:upstream_id>/delete", vrp.upstream_delete),
    path(f"{VR}/upstreams/<int:upstream_id>/cache/delete", vrp.upstream_purge),
    path(f"{VR}/upstreams/<int:upstream_id>/cache_entries/delete", vrp.cache_entry_delete),
    path(f"{VR}/upstreams/<int:upstream_id>/rules", vrp.rule_add),
    path(f"{VR}/upstreams/<int:upstream_id>/rules/<int:rule_id>/delete", vrp.rule_delete),
    path(f"{VR}/upstreams/<int:upstream_id>/claims/<int:claim_id>/delete", vrp.claim_release),
    path("groups/<ref:ref>", package_pages.group_home, name="group_home"),
    # Projects.
    path("<ref:ref>/-/project_members", member_pages.project_members, name="project_members"),
    path("<ref:ref>/-/usage_quotas", usage_pages.project_usage, name="project_usage"),
    path("<ref:ref>/-/project_members/<int:user_id>", member_pages.project_member_change, name="project_member_change"),
    path("<ref:ref>/-/packages", package_pages.project_packages, name="project_packages"),
    path("<ref:ref>/-/packages/<int:package_id>", package_pages.package_detail, name="package_detail"),
    path("<ref:ref>/-/packages/<int:package_id>/delete", package_pages.package_delete, name="package_delete"),
    path(
        "<ref:ref>/-/packages/<int:package_id>/withdrawal",
        package_pages.package_withdrawal,
        name="package_withdrawal",
    ),
    path(
        "<ref:ref>/-/package_files/<int:file_id>/download",
        package_pages.package_file_download,
        name="package_file_download",
    ),
    path(
        "<ref:ref>/-/packages/<int:package_id>/files/<int:file_id>/delete",
        package_pages.package_file_delete,
        name="package_file_delete",
    ),
    path("<ref:ref>/-/settings/repository", token_pages.project_deploy_tokens, name="project_deploy_tokens"),
    path(
        "<ref:ref>/-/settings/repository/deploy_tokens/<int:token_id>/revoke",
        token_pages.project_deploy_token_revoke,
        name="project_deploy_token_revoke",
    ),
    path("<ref:ref>/-/settings/access_tokens", token_pages.project_access_tokens, name="project_access_tokens"),
    path(
        "<ref:ref>/-/settings/access_tokens/<int:token_id>/revoke",
        token_pages.project_access_token_revoke,
        name="project_access_token_revoke",
    ),
    path(
        "<ref:ref>/-/settings/access_tokens/<int:token_id>/rotate",
        token_pages.project_access_token_rotate,
        name="project_access_token_rotate",
    ),
    path("<ref:ref>/-/settings/ci_cd", settings_pages.job_token_scope, name="job_token_scope"),
    path("<ref:ref>/-/settings/general", settings_pages.project_general, name="project_general"),
    path(
        "<ref:ref>/-/settings/packages_and_registries/protection_rules",
        settings_pages.protection_rule_add,
        name="protection_rule_add",
    ),
    path(
        "<ref:ref>/-/settings/packages_and_registries/protection_rules/<int:rule_id>",
        settings_pages.protection_rule_edit,
        name="protection_rule_edit",
    ),
    path(
        "<ref:ref>/-/settings/packages_and_registries/protection_rules/<int:rule_id>/delete",
        settings_pages.protection_rule_delete,
        name="protection_rule_delete",
    ),
    path("<ref:ref>/-/settings/packages_and_registries", settings_pages.package_settings, name="package_settings"),
    path("<ref:ref>/-/hooks", hook_pages.project_hooks, name="project_hooks"),
    path("<ref:ref>/-/hooks/<int:hook_id>", hook_pages.project_hook, name="project_hook"),
    path("<ref:ref>/-/hooks/<int:hook_id>/test", hook_pages.project_hook_test, name="project_hook_test"),
    path("<ref:ref>/-/hooks/<int:hook_id>/delete", hook_pages.project_hook_delete, name="project_hook_delete"),
    path(
        "<ref:ref>/-/hooks/<int:hook_id>/deliveries/<int:delivery_id>/resend",
        hook_pages.project_hook_resend,
        name="project_hook_resend",
    ),
    path("<ref:ref>/-/audit_events", audit_pages.project_audit_events, name="project_audit_events"),
    path("<ref:ref>", package_pages.project_home, name="project_home"),
]
