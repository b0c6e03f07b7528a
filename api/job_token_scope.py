"""CI/CD job token inbound allowlist (spec §4.4). Every call needs ADMIN_PROJECT on the
project (job tokens never get it). Adding a project needs the caller to see it (else 404).

"Source project" is the protected project; entries name the projects/groups whose jobs may
call it. The allowlist listing starts with the project itself, as GitLab's does.
"""

from django.db import IntegrityError, transaction
from django.db.models import Q
from rest_framework import status
from rest_framework.response import Response

from accounts import roles
from accounts.models import JobTokenScopeLink, Project
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.params import BooleanField
from api.serializers import GitLabSerializer, base_url, project_json
from registry import policy


class ScopeInput(GitLabSerializer):
    enabled = BooleanField()


def _target_id(request, field):
    value = request.data.get(field)
    if value is None or value == "":
        raise ApiError(400, f"400 Bad request - {field} is missing")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"400 Bad request - {field} is invalid") from exc


def _check_room(project):
    if JobTokenScopeLink.objects.filter(source_project=project).count() >= JobTokenScopeLink.MAX_ENTRIES:
        raise ApiError(
            400,
            f"400 Bad request - the allowlist can hold at most {JobTokenScopeLink.MAX_ENTRIES} projects and groups",
        )


class JobTokenScopeView(ManagementView):
    def get(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        return Response({"inbound_enabled": project.ci_job_token_scope_enabled, "outbound_enabled": False})

    def patch(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        data = ScopeInput(data=request.data)
        data.is_valid(raise_exception=True)
        project.ci_job_token_scope_enabled = data.validated_data["enabled"]
        project.save(update_fields=["ci_job_token_scope_enabled"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectAllowlistView(ManagementView):
    def get(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        linked = JobTokenScopeLink.objects.filter(source_project=project, target_project__isnull=False)
        projects = (
            Project.objects.select_related("group", "namespace_owner")
            .filter(Q(pk=project.pk) | Q(pk__in=linked.values("target_project_id")))
            .order_by("id")
        )
        return self.paginate(projects, lambda p: project_json(p, request))

    def post(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        target_id = _target_id(request, "target_project_id")
        target = policy.resolve_project(str(target_id))
        if target is None:
            policy.deny_unknown(self.principal, "Project")
        self.access_target = policy.ProjectAccess(self.principal, target)
        if not self.access_target.visible():
            not_found("Project")
        if target.pk == project.pk:
            raise ApiError(400, "400 Bad request - a project is always in its own allowlist")
        _check_room(project)
        try:
            with transaction.atomic():
                JobTokenScopeLink.objects.create(source_project=project, target_project=target, added_by=self.user)
        except IntegrityError as exc:
            raise ApiError(400, "400 Bad request - Target project is already in the job token scope") from exc
        return Response(
            {"source_project_id": project.pk, "target_project_id": target.pk}, status=status.HTTP_201_CREATED
        )


class ProjectAllowlistDetailView(ManagementView):
    def delete(self, request, ref, target_id):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        deleted, _ = JobTokenScopeLink.objects.filter(source_project=project, target_project_id=target_id).delete()
        if not deleted:
            not_found("Project")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _group_entry(group, request):
    return {"id": group.pk, "web_url": f"{base_url(request)}/groups/{group.full_path}", "name": group.name}


class GroupAllowlistView(ManagementView):
    def get(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        links = (
            JobTokenScopeLink.objects.filter(source_project=project, target_group__isnull=False)
            .select_related("target_group")
            .order_by("target_group_id")
        )
        return self.paginate(links, lambda link: _group_entry(link.target_group, request))

    def post(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        target_id = _target_id(request, "target_group_id")
        # Seeing the group is enough to name it (404 otherwise), like projects.
        target = self.get_group(target_id, roles.READ_GROUP)
        _check_room(project)
        try:
            with transaction.atomic():
                JobTokenScopeLink.objects.create(source_project=project, target_group=target, added_by=self.user)
        except IntegrityError as exc:
            raise ApiError(400, "400 Bad request - Target group is already in the job token scope") from exc
        return Response({"source_project_id": project.pk, "target_group_id": target.pk}, status=status.HTTP_201_CREATED)


class GroupAllowlistDetailView(ManagementView):
    def delete(self, request, ref, target_id):
        project = self.get_project(ref, roles.ADMIN_PROJECT)
        deleted, _ = JobTokenScopeLink.objects.filter(source_project=project, target_group_id=target_id).delete()
        if not deleted:
            not_found("Group")
        return Response(status=status.HTTP_204_NO_CONTENT)
