"""Deploy tokens API (spec §4.2): instance list (admin), project and group tokens.

Project: Maintainer+ (ADMIN_PROJECT) for everything. Group: list/show Maintainer+
(READ_GROUP_TOKENS), create/delete Owner (ADMIN_GROUP). DELETE revokes the row (kept for
audit; `active=true` leaves it out) and answers 204; the token stops authenticating at once.
"""

from django.db.models import Q
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response

from accounts import roles
from accounts.models import DeployToken
from accounts.services import create_deploy_token
from api.base import ManagementView, not_found
from api.params import boolean_param
from api.serializers import DeployTokenInput, deploy_token_json


def filter_active(rows, params):
    """`active=true`: usable tokens only; `active=false`: revoked or expired ones only."""
    wanted = boolean_param(params, "active")
    now = timezone.now()
    active = Q(revoked=False) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if wanted is True:
        return rows.filter(active)
    if wanted is False:
        return rows.exclude(active)
    return rows


class InstanceDeployTokensView(ManagementView):
    def get(self, request):
        self.require_admin()
        rows = filter_active(DeployToken.objects.order_by("id"), request.query_params)
        return self.paginate(rows, deploy_token_json)


class DeployTokenOwnerMixin:
    owner_kind = "project"

    def owner(self, ref, write):
        if self.owner_kind == "project":
            return self.get_project(ref, roles.ADMIN_PROJECT)
        return self.get_group(ref, roles.ADMIN_GROUP if write else roles.READ_GROUP_TOKENS)

    def rows(self, owner):
        return DeployToken.objects.filter(**{self.owner_kind: owner}).order_by("id")


class DeployTokensView(DeployTokenOwnerMixin, ManagementView):
    def get(self, request, ref):
        owner = self.owner(ref, write=False)
        return self.paginate(filter_active(self.rows(owner), request.query_params), deploy_token_json)

    def post(self, request, ref):
        owner = self.owner(ref, write=True)
        data = DeployTokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        row, token = create_deploy_token(self.owner_kind, owner, data.validated_data, self.user)
        return Response(deploy_token_json(row, token=token), status=status.HTTP_201_CREATED)


class DeployTokenDetailView(DeployTokenOwnerMixin, ManagementView):
    def get(self, request, ref, token_id):
        owner = self.owner(ref, write=False)
        row = self.rows(owner).filter(pk=token_id).first() or not_found("Deploy Token")
        return Response(deploy_token_json(row))

    def delete(self, request, ref, token_id):
        owner = self.owner(ref, write=True)
        row = self.rows(owner).filter(pk=token_id, revoked=False).first() or not_found("Deploy Token")
        row.revoke()
        return Response(status=status.HTTP_204_NO_CONTENT)
