"""Personal access tokens, and project/group access tokens (a bot user per token).

Every secret is made by `accounts.tokens.issue()` and appears once, in the create response.
"""

from django.db.models import Q
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response

from accounts import roles
from accounts.models import AccessToken, Membership, User, group_access_level
from accounts.principals import ACCESS_TOKEN
from accounts.roles import AccessLevel
from accounts.services import (
    create_personal_token,
    create_resource_token,
    revoke_resource_token,
    rotate_access_token,
)
from api.base import ManagementView, not_found
from api.params import boolean_param
from api.serializers import AccessTokenInput, access_token_json, token_scopes
from registry.errors import Forbidden, Unauthenticated
from registry.policy import numeric_id


def _active_filter(queryset, params):
    state = params.get("state")
    active = boolean_param(params, "active")
    if state == "active" or active is True:
        return queryset.filter(revoked=False).exclude(expires_at__lte=timezone.now())
    if state == "inactive" or active is False:
        return queryset.filter(Q(revoked=True) | Q(expires_at__lte=timezone.now()))
    return queryset


# --- personal access tokens ---------------------------------------------------------------


class UserTokensView(ManagementView):
    """POST /users/:user_id/personal_access_tokens (admin only)."""

    def post(self, request, user_id):
        self.require_admin()
        user = User.objects.filter(pk=user_id).first() or not_found("User")
        data = AccessTokenInput(data=request.data, allowed_scopes=token_scopes(admin=user.is_superuser))
        data.is_valid(raise_exception=True)
        row, token = create_personal_token(user, data.validated_data)
        return Response(access_token_json(row, token=token), status=status.HTTP_201_CREATED)


class OwnTokensView(ManagementView):
    """POST /user/personal_access_tokens: the caller makes a token for itself."""

    def post(self, request):
        if self.user.is_bot:
            raise Forbidden("403 Forbidden - bot users cannot create personal access tokens")
        data = AccessTokenInput(data=request.data, allowed_scopes=token_scopes(admin=self.principal.is_admin))
        data.is_valid(raise_exception=True)
        row, token = create_personal_token(self.user, data.validated_data)
        return Response(access_token_json(row, token=token), status=status.HTTP_201_CREATED)


class PersonalTokensView(ManagementView):
    """GET /personal_access_tokens: the caller's own; an admin sees all (filter `user_id`)."""

    def get(self, request):
        rows = AccessToken.objects.filter(kind=AccessToken.Kind.PERSONAL).order_by("id")
        params = request.query_params
        if not self.principal.is_admin:
            rows = rows.filter(user=self.user)
        elif params.get("user_id"):
            user_id = numeric_id(params["user_id"])
            rows = rows.filter(user_id=user_id) if user_id is not None else rows.none()
        revoked = boolean_param(params, "revoked")
        if revoked is not None:
            rows = rows.filter(revoked=revoked)
        if params.get("search"):
            rows = rows.filter(name__icontains=params["search"])
        return self.paginate(_active_filter(rows, params), access_token_json)


class PersonalTokenDetailView(ManagementView):
    """GET/DELETE /personal_access_tokens/:id and /personal_access_tokens/self."""

    def row(self, token_id):
        if token_id == "self":
            if self.principal.kind != ACCESS_TOKEN:
                raise Unauthenticated("401 Unauthorized - no access token presented")
            return self.principal.access_token
        if numeric_id(token_id) is None:
            not_found("Personal Access Token")
        rows = AccessToken.objects.filter(pk=numeric_id(token_id))
        if not self.principal.is_admin:
            rows = rows.filter(user=self.user)
        return rows.first() or not_found("Personal Access Token")

    def get(self, request, token_id):
        return Response(access_token_json(self.row(token_id)))

    def delete(self, request, token_id):
        row = self.row(token_id)
        if row.revoked:
            not_found("Personal Access Token")
        row.revoke()
        return Response(status=status.HTTP_204_NO_CONTENT)


def _rotation_expiry(row, request):
    """The successor's `expires_at` (validated as on creation), or None: the rotation default."""
    data = AccessTokenInput(
        data={"name": row.name, "scopes": row.scopes, "expires_at": request.data.get("expires_at")},
        allowed_scopes=row.scopes,
    )
    data.is_valid(raise_exception=True)
    return data.validated_data["expires_at"] if request.data.get("expires_at") else None


class PersonalTokenRotateView(PersonalTokenDetailView):
    """POST /personal_access_tokens/:id/rotate (and `self`): the token is revoked and a new one
    with the same name and scopes is answered, once (GitLab's rotation; `expires_at` optional,
    a week by default)."""

    http_method_names = ["post"]

    def post(self, request, token_id):
        row = self.row(token_id)
        if row.revoked or row.expired:
            raise Unauthenticated("401 Unauthorized - the token is revoked or expired")
        successor, plaintext = rotate_access_token(row, _rotation_expiry(row, request))
        return Response(access_token_json(successor, token=plaintext))


# --- project and group access tokens --------------------------------------------------------


class ResourceTokenMixin:
    resource_kind = "project"

    def resource(self, ref):
        if self.resource_kind == "project":
            return self.get_project(ref, roles.ADMIN_PROJECT)
        return self.get_group(ref, roles.ADMIN_GROUP)

    def rows(self, resource):
        field = "resource_project" if self.resource_kind == "project" else "resource_group"
        return AccessToken.objects.filter(kind=self.resource_kind, **{field: resource}).select_related("user")

    def levels(self, resource, rows):
        """The bot's access level on the resource, per user id (one query)."""
        memberships = Membership.objects.filter(**{self.resource_kind: resource}, user_id__in=[r.user_id for r in rows])
        return dict(memberships.values_list("user_id", "access_level"))

    def caller_level(self, resource):
        if self.principal.is_admin:
            return AccessLevel.OWNER
        if self.resource_kind == "project":
            return self.access.level
        return group_access_level(self.user, resource)


class ResourceTokensView(ResourceTokenMixin, ManagementView):
    def get(self, request, ref):
        resource = self.resource(ref)
        rows = _active_filter(self.rows(resource).order_by("id"), request.query_params)
        paginator_response = self.paginate(rows, lambda row: row)
        levels = self.levels(resource, paginator_response.data)
        paginator_response.data = [
            access_token_json(row, access_level=levels.get(row.user_id)) for row in paginator_response.data
        ]
        return paginator_response

    def post(self, request, ref):
        resource = self.resource(ref)
        data = AccessTokenInput(data=request.data, allowed_scopes=token_scopes(admin=False))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        level = int(values.get("access_level") or AccessLevel.MAINTAINER)
        if level > self.caller_level(resource):
            raise Forbidden("403 Forbidden - the token's access level cannot exceed your own")
        row, token = create_resource_token(self.resource_kind, resource, values, level)
        return Response(access_token_json(row, token=token, access_level=level), status=status.HTTP_201_CREATED)


class ResourceTokenDetailView(ResourceTokenMixin, ManagementView):
    def row(self, resource, token_id):
        return self.rows(resource).filter(pk=token_id).first() or not_found("Access Token")

    def get(self, request, ref, token_id):
        resource = self.resource(ref)
        row = self.row(resource, token_id)
        return Response(access_token_json(row, access_level=self.levels(resource, [row]).get(row.user_id)))

    def delete(self, request, ref, token_id):
        resource = self.resource(ref)
        row = self.row(resource, token_id)
        if row.revoked:
            not_found("Access Token")
        revoke_resource_token(row)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ResourceTokenRotateView(ResourceTokenMixin, ManagementView):
    """POST /projects/:id/access_tokens/:token_id/rotate (and groups): the token is revoked and a
    successor for the same bot, name and scopes is answered once, as for personal tokens."""

    def post(self, request, ref, token_id):
        resource = self.resource(ref)
        row = self.rows(resource).filter(pk=token_id).first() or not_found("Access Token")
        if row.revoked or row.expired:
            raise Unauthenticated("401 Unauthorized - the token is revoked or expired")
        expires_at = _rotation_expiry(row, request)
        successor, plaintext = rotate_access_token(row, expires_at)
        level = self.levels(resource, [successor]).get(successor.user_id)
        return Response(access_token_json(successor, token=plaintext, access_level=level))
