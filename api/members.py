"""Members of a group or a project. Listing and showing need to see the target; adding,
changing and removing need ADMIN_GROUP (Owner) / ADMIN_PROJECT (Maintainer+). Nobody grants a
level above their own unless they are an instance admin.

`/members` are the direct members; `/members/all` (read only) everyone with access through a
membership, inherited from ancestor groups too, each with their effective (highest) level."""

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from accounts import roles
from accounts.models import Membership, User, effective_memberships, group_access_level
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

    def caller_level(self, target):
        if self.principal.is_admin:
            return None
        if self.target_kind == "project":
            return self.access.level
        return group_access_level(self.user, target)

    def check_grant(self, target, level):
        ceiling = self.caller_level(target)
        if ceiling is not None and level > ceiling:
            raise Forbidden("403 Forbidden - you cannot grant a role above your own")


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
        self.check_grant(target, values["access_level"])
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    user=user,
                    access_level=values["access_level"],
                    expires_at=values.get("expires_at"),
                    **{self.target_kind: target},
                )
        except IntegrityError as exc:
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
        self.check_grant(target, max(values["access_level"], membership.access_level))
        membership.access_level = values["access_level"]
        if "expires_at" in values:
            membership.expires_at = values["expires_at"]
        membership.save(update_fields=["access_level", "expires_at"])
        return Response(member_json(membership))

    def delete(self, request, ref, user_id):
        target = self.target(ref, manage=True)
        membership = self.membership(target, user_id)
        self.check_grant(target, membership.access_level)
        membership.delete()
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
