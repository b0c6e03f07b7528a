"""Members of a group or a project. Listing and showing need to see the target; adding,
changing and removing need ADMIN_GROUP (Owner) / ADMIN_PROJECT (Maintainer+). Nobody grants a
level above their own unless they are an instance admin, and nobody, admins included, removes or
demotes the last Owner (403, as GitLab: accounts.services.LastOwner).

`/members` are the direct members; `/members/all` (read only) everyone with access through a
membership, inherited from ancestor groups too, each with their effective (highest) level."""

from rest_framework import status
from rest_framework.response import Response

from accounts import roles, services
from accounts.models import Membership, User, effective_memberships
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.serializers import MemberInput, member_json
from registry.errors import Forbidden


class MemberTargetMixin:
    """`target_kind` is "project" or "group"; resolves the target through the policy."""

    target_kind = "project"

    def target(self, ref, manage):
        if self.target_kind == "project":
            return self.get_project(ref, roles.ADMIN_PROJECT if manage else None)
        return self.get_group(ref, roles.ADMIN_GROUP if manage else roles.READ_GROUP)

    def memberships(self, target):
        return Membership.objects.filter(**{self.target_kind: target}).select_related("user").order_by("id")


def refused_grant(exc):
    return Forbidden(f"403 Forbidden - {exc.message}")


class MembersView(MemberTargetMixin, ManagementView):
    def get(self, request, ref):
        target = self.target(ref, manage=False)
        members = self.memberships(target)
        if request.query_params.get("query"):
            members = members.filter(user__username__icontains=request.query_params["query"])
        return self.paginate(members, member_json)

    def post(self, request, ref):
        target = self.target(ref, manage=True)
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values.get("user_id") is None:
            raise ApiError(400, "400 Bad request - user_id is missing")
        user = User.objects.filter(pk=values["user_id"]).first() or not_found("User")
        try:
            membership = services.add_member(
                self.principal, target, user, values["access_level"], values.get("expires_at")
            )
        except services.GrantAboveOwn as exc:
            raise refused_grant(exc) from exc
        except services.MemberExists as exc:
            raise ApiError(409, "409 Member already exists") from exc
        return Response(member_json(membership), status=status.HTTP_201_CREATED)


class MemberDetailView(MemberTargetMixin, ManagementView):
    def membership(self, target, user_id):
        return self.memberships(target).filter(user_id=user_id).first() or not_found("Member")

    def get(self, request, ref, user_id):
        target = self.target(ref, manage=False)
        return Response(member_json(self.membership(target, user_id)))

    def put(self, request, ref, user_id):
        target = self.target(ref, manage=True)
        membership = self.membership(target, user_id)
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            services.change_member(
                self.principal, membership, values["access_level"], values.get("expires_at", ...), target=target
            )
        except (services.GrantAboveOwn, services.LastOwner) as exc:
            raise refused_grant(exc) from exc
        return Response(member_json(membership))

    def delete(self, request, ref, user_id):
        target = self.target(ref, manage=True)
        membership = self.membership(target, user_id)
        try:
            services.remove_member(self.principal, membership, target=target)
        except (services.GrantAboveOwn, services.LastOwner) as exc:
            raise refused_grant(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class AllMembersView(MemberTargetMixin, ManagementView):
    """GET /projects/:id/members/all and /groups/:id/members/all."""

    def get(self, request, ref):
        members = effective_memberships(**{self.target_kind: self.target(ref, manage=False)})
        if request.query_params.get("query"):
            term = request.query_params["query"].lower()
            members = [m for m in members if term in m.user.username.lower() or term in m.user.name.lower()]
        return self.paginate(members, member_json)


class AllMemberDetailView(MemberTargetMixin, ManagementView):
    """GET /projects/:id/members/all/:user_id and /groups/:id/members/all/:user_id."""

    def get(self, request, ref, user_id):
        members = effective_memberships(**{self.target_kind: self.target(ref, manage=False)})
        found = next((m for m in members if m.user_id == user_id), None) or not_found("Member")
        return Response(member_json(found))
