"""/api/v4 REST management routes (mounted by registry/urls.py after the format routes).

`<ref:...>` is an id or a (decoded) full path that may span segments, so every route with a
suffix comes before the bare `projects/<ref>` and `groups/<ref>` routes that would otherwise
swallow it: the packages and cleanup policy routes first, the bare objects last."""

from django.urls import path, re_path

from api import (
    access_tokens,
    audit_events,
    cleanup_policy,
    deploy_tokens,
    groups,
    hooks,
    job_token_scope,
    jobs,
    members,
    packages,
    projects,
    protection_rules,
    users,
    version,
    virtual_registries,
)
from api.unknown_routes import unknown_route


def both(prefix, suffix, view, **kwargs):
    """The same view under /projects/:id and /groups/:id (view kwarg `ref`)."""
    return [
        path(f"projects/<ref:ref>/{suffix}", view.as_view(**{f"{prefix}_kind": "project"}), kwargs),
        path(f"groups/<ref:ref>/{suffix}", view.as_view(**{f"{prefix}_kind": "group"}), kwargs),
    ]


VR = "virtual_registries/packages/<str:format_name>"
GROUP_VR = f"groups/<ref:ref>/-/{VR}"

urlpatterns = [
    # Virtual registries (spec/virtual-registries.md §1).
    path("groups/<ref:ref>/-/virtual_registries/cleanup/policy", virtual_registries.CleanupPolicyView.as_view()),
    path(f"{GROUP_VR}/registries", virtual_registries.GroupRegistriesView.as_view()),
    path(f"{GROUP_VR}/upstreams", virtual_registries.GroupUpstreamsView.as_view()),
    path(f"{GROUP_VR}/upstreams/test", virtual_registries.GroupUpstreamTestView.as_view()),
    path(f"{VR}/registries/<int:registry_id>", virtual_registries.RegistryView.as_view()),
    path(f"{VR}/registries/<int:registry_id>/cache", virtual_registries.RegistryCacheView.as_view()),
    path(f"{VR}/registries/<int:registry_id>/upstreams", virtual_registries.RegistryUpstreamsView.as_view()),
    path(f"{VR}/registries/<int:registry_id>/local/upstreams", virtual_registries.RegistryLocalUpstreamsView.as_view()),
    path(f"{VR}/upstreams/<int:upstream_id>", virtual_registries.UpstreamView.as_view()),
    path(f"{VR}/upstreams/<int:upstream_id>/test", virtual_registries.UpstreamTestView.as_view()),
    path(f"{VR}/upstreams/<int:upstream_id>/cache_entries", virtual_registries.UpstreamCacheEntriesView.as_view()),
    path(f"{VR}/upstreams/<int:upstream_id>/cache", virtual_registries.UpstreamCacheView.as_view()),
    path(f"{VR}/upstreams/<int:upstream_id>/rules", virtual_registries.RulesView.as_view()),
    path(f"{VR}/upstreams/<int:upstream_id>/rules/<int:rule_id>", virtual_registries.RuleView.as_view()),
    path(f"{VR}/local/upstreams/<int:upstream_id>", virtual_registries.LocalUpstreamView.as_view()),
    path(f"{VR}/local/upstreams/<int:upstream_id>/test", virtual_registries.UpstreamTestView.as_view()),
    path(f"{VR}/local/upstreams/<int:upstream_id>/claims", virtual_registries.ClaimsView.as_view()),
    path(f"{VR}/local/upstreams/<int:upstream_id>/claims/<int:claim_id>", virtual_registries.ClaimView.as_view()),
    path(f"{VR}/cache_entries/<path:entry_id>", virtual_registries.CacheEntryView.as_view()),
    path(f"{VR}/registry_upstreams", virtual_registries.RegistryUpstreamsLinkView.as_view()),
    path(f"{VR}/registry_upstreams/<int:link_id>", virtual_registries.RegistryUpstreamLinkView.as_view()),
    # Packages and the cleanup policy.
    path("projects/<ref:ref>/packages", packages.PackagesView.as_view(target_kind="project")),
    path("groups/<ref:ref>/packages", packages.PackagesView.as_view(target_kind="group")),
    path("projects/<ref:ref>/packages/settings", packages.PackageSettingsView.as_view()),
    path("projects/<ref:project_ref>/packages/cleanup_policy", cleanup_policy.CleanupPolicyView.as_view()),
    path(
        "projects/<ref:project_ref>/packages/cleanup_policy/dry_run", cleanup_policy.CleanupPolicyDryRunView.as_view()
    ),
    path("projects/<ref:ref>/packages/protection/rules", protection_rules.ProtectionRulesView.as_view()),
    path(
        "projects/<ref:ref>/packages/protection/rules/<int:rule_id>",
        protection_rules.ProtectionRuleDetailView.as_view(),
    ),
    path("projects/<ref:ref>/packages/<int:package_id>", packages.PackageDetailView.as_view()),
    path("projects/<ref:ref>/packages/<int:package_id>/package_files", packages.PackageFilesView.as_view()),
    path("projects/<ref:ref>/packages/<int:package_id>/withdrawal", packages.PackageWithdrawalView.as_view()),
    path(
        "projects/<ref:ref>/packages/<int:package_id>/package_files/<int:file_id>",
        packages.PackageFileDetailView.as_view(),
    ),
    path(
        "projects/<ref:ref>/packages/<int:package_id>/package_files/<int:file_id>/download",
        packages.PackageFileDownloadView.as_view(),
    ),
    path("audit_events", audit_events.AuditEventsView.as_view(scope="instance")),
    path("audit_events/<int:event_id>", audit_events.AuditEventDetailView.as_view()),
    path("projects/<ref:ref>/audit_events", audit_events.AuditEventsView.as_view(scope="project")),
    path("groups/<ref:ref>/audit_events", audit_events.AuditEventsView.as_view(scope="group")),
    path("user", users.CurrentUserView.as_view()),
    path("user/personal_access_tokens", access_tokens.OwnTokensView.as_view()),
    path("users", users.UsersView.as_view()),
    path("users/<int:user_id>", users.UserDetailView.as_view()),
    path("users/<int:user_id>/block", users.UserStateView.as_view(block=True)),
    path("users/<int:user_id>/unblock", users.UserStateView.as_view(block=False)),
    path("users/<int:user_id>/personal_access_tokens", access_tokens.UserTokensView.as_view()),
    path("personal_access_tokens", access_tokens.PersonalTokensView.as_view()),
    path("personal_access_tokens/<str:token_id>/rotate", access_tokens.PersonalTokenRotateView.as_view()),
    path("personal_access_tokens/<str:token_id>", access_tokens.PersonalTokenDetailView.as_view()),
    path("deploy_tokens", deploy_tokens.InstanceDeployTokensView.as_view()),
    path("job", jobs.CurrentJobView.as_view()),
    # Project-only routes.
    path("projects/<ref:ref>/job_token_scope", job_token_scope.JobTokenScopeView.as_view()),
    path("projects/<ref:ref>/job_token_scope/allowlist", job_token_scope.ProjectAllowlistView.as_view()),
    path(
        "projects/<ref:ref>/job_token_scope/allowlist/<int:target_id>",
        job_token_scope.ProjectAllowlistDetailView.as_view(),
    ),
    path("projects/<ref:ref>/job_token_scope/groups_allowlist", job_token_scope.GroupAllowlistView.as_view()),
    path(
        "projects/<ref:ref>/job_token_scope/groups_allowlist/<int:target_id>",
        job_token_scope.GroupAllowlistDetailView.as_view(),
    ),
    path("projects/<ref:ref>/jobs", jobs.JobsView.as_view()),
    # Group-only routes.
    path("groups/<ref:ref>/subgroups", groups.SubgroupsView.as_view()),
    path("groups/<ref:ref>/projects", projects.GroupProjectsView.as_view()),
    path("projects/<ref:ref>/jobs/<int:job_id>/finish", jobs.JobFinishView.as_view()),
    # Routes under both projects and groups.
    *both("target", "members", members.MembersView),
    *both("target", "members/all", members.AllMembersView),
    *both("target", "members/all/<int:user_id>", members.AllMemberDetailView),
    *both("target", "members/<int:user_id>", members.MemberDetailView),
    *both("resource", "access_tokens", access_tokens.ResourceTokensView),
    *both("resource", "access_tokens/<int:token_id>", access_tokens.ResourceTokenDetailView),
    *both("resource", "access_tokens/<int:token_id>/rotate", access_tokens.ResourceTokenRotateView),
    *both("owner", "deploy_tokens", deploy_tokens.DeployTokensView),
    *both("owner", "deploy_tokens/<int:token_id>", deploy_tokens.DeployTokenDetailView),
    *both("owner", "hooks", hooks.HooksView),
    *both("owner", "hooks/<int:hook_id>", hooks.HookDetailView),
    *both("owner", "hooks/<int:hook_id>/test/<str:trigger>", hooks.HookTestView),
    *both("owner", "hooks/<int:hook_id>/events", hooks.HookEventsView),
    *both("owner", "hooks/<int:hook_id>/events/<int:delivery_id>/resend", hooks.HookResendView),
    # The bare collections and objects last.
    path("projects", projects.ProjectsView.as_view()),
    path("groups", groups.GroupsView.as_view()),
    path("projects/<ref:project_ref>", projects.ProjectDetailView.as_view()),
    path("groups/<ref:group_ref>", groups.GroupDetailView.as_view()),
    path("version", version.VersionView.as_view()),
    # Anything else under /api/v4/ is GitLab's JSON 404, never a web page.
    re_path(r"^.*$", unknown_route),
]
