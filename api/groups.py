"""Groups: create (top-level by any signed-in internal user; subgroups by Maintainer+ of the
parent, GitLab's default subgroup creation level), list the visible ones, show one, list a
group's visible subgroups. (A group's projects, GET /groups/:id/projects, are in api/projects.py.)"""

from django.db.models import Q
from rest_framework import status
from rest_framework.response import Response

from accounts import roles, services
from accounts.models import Membership
from accounts.roles import AccessLevel
from accounts.services import visibility_fits
from api.base import ManagementView
from api.exceptions import ApiError
from api.params import boolean_param, choice_param
from api.serializers import GroupInput, group_json
from registry import usage
from registry.errors import Forbidden
from registry.policy import group_may, projects_under, visible_groups


def check_visibility_fits(visibility, parent_group, what):
    """Nothing is more visible than the group it lives in (GitLab's rule)."""
    if not visibility_fits(visibility, parent_group):
        raise ApiError(
            400, f"400 Bad request - visibility_level of the {what} is not allowed in a {parent_group.visibility} group"
        )


def path_taken():
    return Response({"message": {"path": ["has already been taken"]}}, status=status.HTTP_400_BAD_REQUEST)


def order_groups(groups, params):
    """GitLab's `order_by` (name, the default, path or id) and `sort` (asc by default) of group
    lists; a value they do not know is 400."""
    order_by = choice_param(params, "order_by", ("name", "path", "id")) or "name"
    sort = choice_param(params, "sort", ("asc", "desc")) or "asc"
    prefix = "-" if sort == "desc" else ""
    return groups.order_by(f"{prefix}{order_by}", f"{prefix}id")


class GroupsView(ManagementView):
    anonymous_methods = ("GET", "HEAD")

    def get(self, request):
        groups = visible_groups(self.principal)
        params = request.query_params
        if params.get("search"):
            groups = groups.filter(name__icontains=params["search"]) | groups.filter(
                full_path__icontains=params["search"]
            )
        if boolean_param(params, "top_level_only"):
            groups = groups.filter(parent__isnull=True)
        return self.paginate(order_groups(groups, params), lambda g: group_json(g, request))

    def post(self, request):
        data = GroupInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        parent = None
        if values.get("parent_id"):
            parent = self.get_group(values["parent_id"], roles.CREATE_SUBGROUP)
        elif not services.may_create_top_level_group(self.principal):
            raise Forbidden("403 Forbidden - you may not create top-level groups")
        try:
            group = services.create_group(
                self.user,
                name=values["name"],
                path=values["path"],
                parent=parent,
                visibility=values.get("visibility"),
                description=values.get("description", ""),
            )
        except services.VisibilityNotAllowed as exc:
            raise ApiError(400, f"400 Bad request - {exc.message}") from exc
        except services.PathTaken:
            return path_taken()
        return Response(group_json(group, request), status=status.HTTP_201_CREATED)


class GroupDetailView(ManagementView):
    anonymous_methods = ("GET", "HEAD")

    def get(self, request, group_ref):
        group = self.get_group(group_ref, roles.READ_GROUP)
        data = group_json(group, request)
        if boolean_param(request.query_params, "statistics") and group_may(
            self.principal, group, roles.READ_STATISTICS
        ):
            data["statistics"] = usage.statistics_json(usage.usage_of(projects_under(group)))
        return Response(data)


class SubgroupsView(ManagementView):
    """GET /groups/:id/subgroups: the group's direct children the caller sees."""

    anonymous_methods = ("GET", "HEAD")

    def get(self, request, ref):
        group = self.get_group(ref, roles.READ_GROUP)
        params = request.query_params
        groups = visible_groups(self.principal).filter(parent=group)
        if params.get("search"):
            groups = groups.filter(Q(name__icontains=params["search"]) | Q(path__icontains=params["search"]))
        if boolean_param(params, "owned"):
            groups = groups.filter(pk__in=owned_group_ids(self.user))
        return self.paginate(order_groups(groups, params), lambda g: group_json(g, request))


def owned_group_ids(user):
    """Groups where the user is a direct Owner (GitLab's `owned`)."""
    if user is None:
        return []
    return Membership.objects.filter(user=user, group__isnull=False, access_level=AccessLevel.OWNER).values("group_id")
