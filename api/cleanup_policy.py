"""`/api/v4/projects/:id/packages/cleanup_policy`: GET, PUT, and POST `.../dry_run`.

GitLab only has the GraphQL mutation `updatePackagesCleanupPolicy`; this is the same policy
in REST, Maintainer+ (policy action ADMIN_PACKAGE_SETTINGS). Validation errors are
400 `{"error": "..."}`. Changing a rule makes the policy due at the next beat tick.
"""

from rest_framework.response import Response

from accounts import roles
from api.base import ManagementView
from registry import cleanup


def render(policy):
    return {
        "project_id": policy.project_id,
        "enabled": cleanup.is_active(policy),
        "keep_n_duplicated_package_files": policy.keep_n_duplicated_package_files,
        "keep_n_versions": policy.keep_n_versions,
        "older_than_days": policy.older_than_days,
        "name_regex_keep": policy.name_regex_keep,
        "name_regex_delete": policy.name_regex_delete,
        "next_run_at": policy.next_run_at.isoformat().replace("+00:00", "Z") if policy.next_run_at else None,
    }


class CleanupPolicyView(ManagementView):
    def get(self, request, project_ref):
        project = self.get_project(project_ref, roles.ADMIN_PACKAGE_SETTINGS)
        return Response(render(cleanup.policy_for(project)))

    def put(self, request, project_ref):
        project = self.get_project(project_ref, roles.ADMIN_PACKAGE_SETTINGS)
        data = request.data
        if not hasattr(data, "keys"):
            return Response({"error": "the body must be an object"}, status=400)
        data = {name: data.get(name) for name in cleanup.FIELDS if name in data}
        try:
            cleaned = cleanup.clean(data)
        except cleanup.PolicyError as exc:
            return Response({"error": str(exc)}, status=400)
        return Response(render(cleanup.save(project, cleaned)))


class CleanupPolicyDryRunView(ManagementView):
    def post(self, request, project_ref):
        project = self.get_project(project_ref, roles.ADMIN_PACKAGE_SETTINGS)
        return Response(cleanup.describe(cleanup.plan(cleanup.policy_for(project))))
