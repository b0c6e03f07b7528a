"""Users: create (admin), list, show, and the caller (`GET /user`).

GET /users: an admin sees everyone; anyone else gets a list holding only themselves
(Packhouse's choice: GitLab lists every user to any signed-in caller).
"""

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

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
        if User.objects.filter(username__iexact=values["username"]).exists():
            raise ApiError(409, "Username has already been taken")
        if User.objects.filter(email__iexact=values["email"]).exists():
            raise ApiError(409, "Email has already been taken")
        user = User(
            username=values["username"],
            email=values["email"],
            name=values["name"],
            is_superuser=values["admin"],
            is_staff=values["admin"],
            is_external=values["external"],
        )
        if values.get("password"):
            user.set_password(values["password"])
        else:
            user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:
            raise ApiError(409, "Username has already been taken") from exc
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
