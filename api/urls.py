"""/api/v4 REST management routes (mounted by registry/urls.py after the format routes).

`<ref:...>` is an id or a (decoded) full path that may span segments, so every route with a
suffix comes before the bare `projects/<ref>` and `groups/<ref>` routes that would otherwise
swallow it: the packages and cleanup policy routes first, the bare objects last."""

from django.urls import path

from api import (
    access_tokens,
    cleanup_policy,
    deploy_tokens,
    groups,
    job_token_scope,
    jobs,
    members,
    packages,
    projects,
    users,
)


def both(prefix, suffix, view, **kwargs):
    """The same view under /projects/:id and /groups/:id (view kwarg `ref`)."""
    return [
        path(f"projects/<ref:ref>/{suffix}", view.as_view(**{f"{prefix}_kind": "project"}), kwargs),
        path(f"groups/<ref:ref>/{suffix}", view.as_view(**{f"{prefix}_kind": "group"}), kwargs),
    ]


urlpatterns = [
    # Packages and the cleanup policy.
    path("projects/<ref:ref>/packages", packages.PackagesView.as_view(target_kind="project")),
    path("groups/<ref:ref>/packages", packages.PackagesView.as_view(target_kind="group")),
    path("projects/<ref:ref>/packages/settings", packages.PackageSettingsView.as_view()),
    path("projects/<ref:project_ref>/packages/cleanup_policy", cleanup_policy.CleanupPolicyView.as_view()),
    path(
        "projects/<ref:project_ref>/packages/cleanup_policy/dry_run", cleanup_policy.CleanupPolicyDryRunView.as_view()
    ),
    path("projects/<ref:ref>/packages/<int:package_id>", packages.PackageDetailView.as_view()),
    path("projects/<ref:ref>/packages/<int:package_id>/package_files", packages.PackageFilesView.as_view()),
    path("projects/<ref:ref>/packages/<int:package_id>/withdrawal", packages.PackageWithdrawalView.as_view()),
    path(
        "projects/<ref:ref>/packages/<int:package_id>/package_files/<int:file_id>",
        packages.PackageFileDetailView.as_view(),
    ),
    path("user", users.CurrentUserView.as_view()),
    path("user/personal_access_tokens", access_tokens.OwnTokensView.as_view()),
    path("users", users.UsersView.as_view()),
    path("users/<int:user_id>", users.UserDetailView.as_view()),
    path("users/<int:user_id>/block", users.UserStateView.as_view(blocked=True)),
    path("users/<int:user_id>/unblock", users.UserStateView.as_view(blocked=False)),
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
    path("projects/<ref:ref>/jobs/<int:job_id>/finish", jobs.JobFinishView.as_view()),
    # Routes under both projects and groups.
    *both("target", "members", members.MembersView),
    *both("target", "members/<int:user_id>", members.MemberDetailView),
    *both("resource", "access_tokens", access_tokens.ResourceTokensView),
    *both("resource", "access_tokens/<int:token_id>", access_tokens.ResourceTokenDetailView),
    *both("owner", "deploy_tokens", deploy_tokens.DeployTokensView),
    *both("owner", "deploy_tokens/<int:token_id>", deploy_tokens.DeployTokenDetailView),
    # The bare collections and objects last.
    path("projects", projects.ProjectsView.as_view()),
    path("groups", groups.GroupsView.as_view()),
    path("projects/<ref:project_ref>", projects.ProjectDetailView.as_view()),
    path("groups/<ref:group_ref>", groups.GroupDetailView.as_view()),
]
