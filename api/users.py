"""Users: create, update, block and unblock (admin), list, show, and the caller (`GET /user`).

GET /users: an admin sees everyone; anyone else gets a list holding only themselves
(Packhouse's choice: GitLab lists every user to any signed-in caller).
"""

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from accounts import services
from accounts.models import User
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.serializers import UserInput, UserUpdateInput, user_json
from registry.errors import Forbidden


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
            raise ApiError(409, exc.message, verbatim=True) from exc
        return Response(user_json(user, with_email=True), status=status.HTTP_201_CREATED)


def _taken(user, values):
    """The 409 GitLab answers when another user holds the username or email."""
    others = User.objects.exclude(pk=user.pk)
    if "username" in values and others.filter(username__iexact=values["username"]).exists():
        raise ApiError(409, "Username has already been taken", verbatim=True)
    if "email" in values and others.filter(email__iexact=values["email"]).exists():
        raise ApiError(409, "Email has already been taken", verbatim=True)


class UserDetailView(ManagementView):
    read_user_scope = True

    def get(self, request, user_id):
        user = User.objects.filter(pk=user_id).first() or not_found("User")
        return Response(_render_for(self.principal)(user))

    def put(self, request, user_id):
        """Admins only: username, email, name, password, admin and external flags."""
        self.require_admin()
        user = User.objects.filter(pk=user_id).first() or not_found("User")
        data = UserUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        _taken(user, values)
        if values.get("admin") is False and user.pk == self.user.pk:
            raise Forbidden("403 Forbidden - an administrator cannot take away their own admin rights")
        for field in ("username", "email", "name"):
            if field in values:
                setattr(user, field, values[field])
        if "admin" in values:
            user.is_superuser = user.is_staff = values["admin"]
        if "external" in values:
            user.is_external = values["external"]
        if "password" in values:
            user.set_password(values["password"])
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:
            raise ApiError(409, "Username has already been taken", verbatim=True) from exc
        return Response(user_json(user, with_email=True))


class UserStateView(ManagementView):
    """POST /users/:id/block and /users/:id/unblock (admins): 201 `true`, as GitLab answers.
    A blocked user's tokens stop authenticating at once; an administrator does not block
    themselves."""

    block = True

    def post(self, request, user_id):
        self.require_admin()
        user = User.objects.filter(pk=user_id).first() or not_found("User")
        if self.block and user.pk == self.user.pk:
            raise Forbidden("403 Forbidden - an administrator cannot block themselves")
        if user.is_active == self.block:
            services.set_blocked(user, self.block)
        return Response(True, status=status.HTTP_201_CREATED)


class CurrentUserView(ManagementView):
    read_user_scope = True

    def get(self, request):
        return Response(user_json(self.user, with_email=True))
