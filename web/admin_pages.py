"""The admin area's users (`/admin/users`, GitLab's path): list, create, block, unblock, make or
stop being an administrator. Instance administrators only (the API's `require_admin`: 403 for
anyone else signed in). Input is checked by the REST API's UserInput and the user is created by
accounts.services.create_user, as through `POST /api/v4/users`."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services
from accounts.models import User
from api.serializers import UserInput
from registry.errors import Forbidden, NotFound
from web import forms
from web.pages import page, principal_of

PER_PAGE = 50


def _require_admin(request):
    if not principal_of(request).is_admin:
        raise Forbidden()


@require_GET
@login_required
@page
def users(request):
    _require_admin(request)
    rows = User.objects.filter(is_bot=False).order_by("username")
    term = request.GET.get("search", "").strip()
    if term:
        rows = rows.filter(Q(username__icontains=term) | Q(name__icontains=term) | Q(email__icontains=term))
    state = request.GET.get("filter", "")
    if state == "blocked":
        rows = rows.filter(is_active=False)
    elif state == "admins":
        rows = rows.filter(is_superuser=True)
    listing = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "web/admin_users.html", {"users": listing, "search": term, "filter": state})


@require_http_methods(["GET", "POST"])
@login_required
@page
def new_user(request):
    _require_admin(request)
    form = forms.NewUserForm()
    status = 200
    if request.method == "POST":
        form = forms.NewUserForm(request.POST)
        if form.is_valid():
            values = {key: value for key, value in form.cleaned_data.items() if value != ""}
            data = UserInput(data=values)
            if data.is_valid():
                try:
                    user = services.create_user(data.validated_data)
                except services.UsernameTaken as exc:
                    form.add_error("username", exc.message)
                except services.EmailTaken as exc:
                    form.add_error("email", exc.message)
                else:
                    messages.success(request, f"User {user.username} was created.")
                    return redirect("admin_area:users")
            else:
                forms.serializer_errors_into(form, data.errors)
        status = 400
    return render(request, "web/admin_user_new.html", {"form": form}, status=status)


ACTIONS = {
    "block": (lambda user: services.set_blocked(user, True), "blocked"),
    "unblock": (lambda user: services.set_blocked(user, False), "unblocked"),
    "make_admin": (lambda user: services.set_admin(user, True), "is now an administrator"),
    "remove_admin": (lambda user: services.set_admin(user, False), "is no longer an administrator"),
}


@require_POST
@login_required
@page
def user_action(request, user_id, action):
    _require_admin(request)
    user = User.objects.filter(pk=user_id, is_bot=False).first()
    if user is None or action not in ACTIONS:
        raise NotFound()
    if user.pk == request.user.pk and action in ("block", "remove_admin"):
        messages.error(request, "You cannot block yourself or give up your own administrator rights here.")
        return redirect("admin_area:users")
    change, said = ACTIONS[action]
    change(user)
    messages.success(request, f"{user.username} {said}.")
    return redirect("admin_area:users")
