"""Projects: create (in a group: Maintainer+ of the group, GitLab's default project creation
level; without namespace_id: the caller's personal namespace), list visible, show, update."""

from django.db.models import Q
from rest_framework import status
from rest_framework.response import Response

from accounts import roles, services
from accounts.models import Project, Visibility
from api.base import ManagementView
from api.exceptions import ApiError
from api.groups import check_visibility_fits
from api.params import boolean_param, choice_param
from api.serializers import ProjectInput, ProjectUpdateInput, project_json
from registry import policy, usage
from registry.errors import Forbidden
from registry.policy import visible_projects


def path_taken():
    return Response({"message": {"path": ["has already been taken"]}}, status=status.HTTP_400_BAD_REQUEST)


# GitLab's order_by values for projects; a project row records no later activity than its
# creation, so `updated_at` and `last_activity_at` order by that.
ORDERINGS = {
    "id": "id",
    "name": "name",
    "path": "path",
    "created_at": "created_at",
    "updated_at": "created_at",
    "last_activity_at": "created_at",
}


def filter_projects(projects, params, user):
    """The list filters of GET /projects and GET /groups/:id/projects: `search`, `visibility`,
    `owned`, `order_by` and `sort` (GitLab's default: newest first); a value they do not know
    is 400."""
    if params.get("search"):
        term = params["search"]
        projects = projects.filter(Q(name__icontains=term) | Q(full_path__icontains=term))
    visibility = choice_param(params, "visibility", Visibility.values)
    if visibility:
        projects = projects.filter(visibility=visibility)
    if boolean_param(params, "owned"):
        projects = projects.filter(namespace_owner=user) if user is not None else projects.none()
    order_by = ORDERINGS[choice_param(params, "order_by", ORDERINGS) or "created_at"]
    sort = choice_param(params, "sort", ("asc", "desc")) or "desc"
    prefix = "-" if sort == "desc" else ""
    return projects.order_by(f"{prefix}{order_by}", f"{prefix}id")


class ProjectsView(ManagementView):
    anonymous_methods = ("GET", "HEAD")

    def get(self, request):
        projects = filter_projects(visible_projects(self.principal), request.query_params, self.user)
        return self.paginate(projects, lambda p: project_json(p, request))

    def post(self, request):
        data = ProjectInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        group = None
        if values.get("namespace_id"):
            group = self.get_group(values["namespace_id"], roles.CREATE_PROJECT)
        elif self.user.is_bot:
            raise Forbidden("403 Forbidden - bots have no personal namespace")
        try:
            project = services.create_project(
                self.user,
                name=values.get("name"),
                path=values.get("path"),
                group=group,
                visibility=values.get("visibility"),
                package_registry_access_level=values.get("package_registry_access_level"),
                description=values.get("description", ""),
            )
        except services.VisibilityNotAllowed as exc:
            raise ApiError(400, f"400 Bad request - {exc.message}") from exc
        except services.InvalidPath:
            return Response({"message": {"path": ["is invalid"]}}, status=status.HTTP_400_BAD_REQUEST)
        except services.PathTaken:
            return path_taken()
        return Response(project_json(project, request), status=status.HTTP_201_CREATED)


class GroupProjectsView(ManagementView):
    """GET /groups/:id/projects: the group's projects the caller sees (`include_subgroups`:
    every project below it), with the filters of GET /projects."""

    anonymous_methods = ("GET", "HEAD")

    def get(self, request, ref):
        group = self.get_group(ref, roles.READ_GROUP)
        params = request.query_params
        projects = visible_projects(self.principal)
        if boolean_param(params, "include_subgroups"):
            projects = projects.filter(full_path__startswith=f"{group.full_path}/")
        else:
            projects = projects.filter(group=group)
        projects = filter_projects(projects, params, self.user)
        return self.paginate(projects, lambda p: project_json(p, request))


class ProjectDetailView(ManagementView):
    anonymous_methods = ("GET", "HEAD")

    def get(self, request, project_ref):
        project = self.get_project(project_ref)
        data = project_json(project, request)
        if boolean_param(request.query_params, "statistics") and policy.can(
            self.principal, project, roles.READ_STATISTICS
        ):
            data["statistics"] = usage.statistics_json(usage.usage_of(Project.objects.filter(pk=project.pk)))
        return Response(data)

    def put(self, request, project_ref):
        # Packhouse: Maintainer+ (ADMIN_PROJECT) for every attribute, visibility included
        # (GitLab asks Owner for visibility changes).
        project = self.get_project(project_ref, roles.ADMIN_PROJECT)
        data = ProjectUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "visibility" in values:
            check_visibility_fits(values["visibility"], project.group, "project")
        for field, value in values.items():
            setattr(project, field, value)
        if values:
            project.save(update_fields=[*values.keys()])
        return Response(project_json(project, request))
