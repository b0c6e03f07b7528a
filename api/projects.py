"""Projects: create (in a group: Maintainer+ of the group, GitLab's default project creation
level; without namespace_id: the caller's personal namespace), list visible, show, update."""

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from accounts import roles
from accounts.models import PackageRegistryAccess, Project, Visibility
from api.base import ManagementView
from api.groups import check_visibility_fits
from api.params import boolean_param
from api.serializers import ProjectInput, ProjectUpdateInput, project_json
from registry.errors import Forbidden
from registry.policy import visible_projects


def path_taken():
    return Response({"message": {"path": ["has already been taken"]}}, status=status.HTTP_400_BAD_REQUEST)


def _slug(name):
    return "-".join(name.strip().lower().split())


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
        if boolean_param(params, "owned") and self.user is not None:
            projects = projects.filter(namespace_owner=self.user)
        return self.paginate(projects.order_by("id"), lambda p: project_json(p, request))

    def post(self, request):
        data = ProjectInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        name = values.get("name") or values["path"]
        path = values.get("path") or _slug(name)
        group = None
        if values.get("namespace_id"):
            group = self.get_group(values["namespace_id"], roles.CREATE_PROJECT)
        elif self.user.is_bot:
            raise Forbidden("403 Forbidden - bots have no personal namespace")
        visibility = values.get("visibility") or Visibility.PRIVATE
        check_visibility_fits(visibility, group, "project")
        owner = None if group else self.user
        if Project.objects.filter(group=group, namespace_owner=owner, path__iexact=path).exists():
            return path_taken()
        project = Project(
            name=name,
            path=path,
            group=group,
            namespace_owner=owner,
            visibility=visibility,
            package_registry_access_level=values.get("package_registry_access_level") or PackageRegistryAccess.ENABLED,
            description=values.get("description", ""),
        )
        try:
            project.full_clean(exclude=["full_path"], validate_unique=False, validate_constraints=False)
        except Exception:  # noqa: BLE001 - any model validation error is a bad path here
            return Response({"message": {"path": ["is invalid"]}}, status=status.HTTP_400_BAD_REQUEST)
        try:
            with transaction.atomic():
                project.save()
        except IntegrityError:
            return path_taken()
        return Response(project_json(project, request), status=status.HTTP_201_CREATED)


class ProjectDetailView(ManagementView):
    anonymous_methods = ("GET", "HEAD")

    def get(self, request, project_ref):
        project = self.get_project(project_ref)
        return Response(project_json(project, request))

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
