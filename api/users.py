"""Users: create (admin), list, show, and the caller (`GET /user`).

GET /users: an admin sees everyone; anyone else gets a list holding only themselves
(Packhouse's choice: GitLab lists every user to any signed-in caller).
"""

from rest_framework import status
from rest_framework.response import Response

from accounts import services
from accounts.models import User
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.serializers import UserInput, user_json


def _render_for(principal):
    def render(user):
        return user_json(user, with_email=principal.is_admin or user.pk == principal.user.pk)

    return render


class UsersView(ManagementView):
    read_user_scope = True

    def get(self, request):
        users = User.objects.order_by("id")
        if not self.principal.is_admin:
            users = users.filter(pk=self.user.pk)
        if request.query_params.get("username"):
            users = users.filter(username__iexact=request.query_params["username"])
        if request.query_params.get("search"):
            term = request.query_params["search"]
            users = users.filter(username__icontains=term) | users.filter(email__iexact=term)
        return self.paginate(users, _render_for(self.principal))

    def post(self, request):
        self.require_admin()
        data = UserInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            user = services.create_user(values)
        except services.Refused as exc:
            raise ApiError(409, exc.message) from exc
        return Response(user_json(user, with_email=True), status=status.HTTP_201_CREATED)


class UserDetailView(ManagementView):
    read_user_scope = True

    def get(self, request, user_id):
        user = User.objects.filter(pk=user_id).first() or not_found("User")
        return Response(_render_for(self.principal)(user))


class CurrentUserView(ManagementView):
    read_user_scope = True

    def get(self, request):
        return Response(user_json(self.user, with_email=True))


class UserStateView(ManagementView):
    """GitLab's `POST /users/:id/block` and `/unblock` (admin): a blocked user cannot sign in and
    every token of theirs is refused."""

    blocked = True

    def post(self, request, user_id):
        self.require_admin()
        user = User.objects.filter(pk=user_id).first() or not_found("User")
        if user.pk == self.user.pk:
            raise ApiError(403, "403 Forbidden - you cannot block yourself")
        services.set_blocked(user, self.blocked)
        return Response(True, status=status.HTTP_201_CREATED)
