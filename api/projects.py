"""Projects: create (in a group: Maintainer+ of the group, GitLab's default project creation
level; without namespace_id: the caller's personal namespace), list visible, show, update."""

from rest_framework import status
from rest_framework.response import Response

from accounts import roles, services
from accounts.models import Project, Visibility
from api.base import ManagementView
from api.exceptions import ApiError
from api.groups import check_visibility_fits
from api.serializers import ProjectInput, ProjectUpdateInput, project_json
from registry import policy, usage
from registry.errors import Forbidden
from registry.policy import visible_projects


def _bool(value):
    return str(value).lower() in ("1", "true", "yes", "on")


def path_taken():
    return Response({"message": {"path": ["has already been taken"]}}, status=status.HTTP_400_BAD_REQUEST)


class ProjectsView(ManagementView):
    anonymous_methods = ("GET", "HEAD")

    def get(self, request):
        projects = visible_projects(self.principal)
        params = request.query_params
        if params.get("search"):
            term = params["search"]
            projects = projects.filter(name__icontains=term) | projects.filter(full_path__icontains=term)
        if params.get("visibility") in Visibility.values:
            projects = projects.filter(visibility=params["visibility"])
        if params.get("owned") in ("true", "1") and self.user is not None:
            projects = projects.filter(namespace_owner=self.user)
        return self.paginate(projects.order_by("id"), lambda p: project_json(p, request))

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


class ProjectDetailView(ManagementView):
    anonymous_methods = ("GET", "HEAD")

    def get(self, request, project_ref):
        project = self.get_project(project_ref)
        data = project_json(project, request)
        if _bool(request.query_params.get("statistics")) and policy.can(self.principal, project, roles.READ_STATISTICS):
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
