"""Members of a project (`/<project>/-/project_members`) and of a group
(`/groups/<group>/-/group_members`): anyone who sees the project or group sees its members, direct
and inherited (with the group they come from); administering them (ADMIN_PROJECT: Maintainer+,
ADMIN_GROUP: Owner) adds a user with a role and an optional expiry, changes and removes direct
members. Input is checked by the REST API's MemberInput and applied by accounts.services, so
nobody grants a role above their own nor removes or demotes the last Owner, as through the API."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import roles, services
from accounts.models import Membership, Project, User
from api.serializers import MemberInput
from registry import policy
from registry.errors import Forbidden, NotFound
from web import forms
from web.pages import group_nav, load_group, load_project, page, principal_of, project_nav


def _direct(target):
    kind = "project" if isinstance(target, Project) else "group"
    return Membership.objects.filter(**{kind: target}).select_related("user").order_by("user__username")


def _member_input(post):
    """MemberInput over the posted role and expiry (an empty date: no expiry)."""
    return MemberInput(data={"access_level": post.get("access_level", ""), "expires_at": post.get("expires_at", "")})


def _members_page(request, target, context, manage_url, can_manage):
    form = forms.AddMemberForm()
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise Forbidden()
        form = forms.AddMemberForm(request.POST)
        if form.is_valid():
            data = _member_input(request.POST)
            user = User.objects.filter(username__iexact=form.cleaned_data["username"]).first()
            if not data.is_valid():
                forms.serializer_errors_into(form, data.errors)
            elif user is None:
                form.add_error("username", "No user with this username.")
            else:
                try:
                    services.add_member(
                        principal_of(request),
                        target,
                        user,
                        data.validated_data["access_level"],
                        data.validated_data.get("expires_at"),
                    )
                except services.MemberExists:
                    form.add_error("username", f"{user.username} is already a member.")
                except services.GrantAboveOwn as exc:
                    form.add_error("access_level", exc.message)
                else:
                    messages.success(request, f"Added {user.username}.")
                    return redirect(manage_url)
        status = 400
    context.update(
        {
            "form": form,
            "members": _direct(target),
            "inherited": services.inherited_memberships(target),
            "can_manage": can_manage,
            "roles": forms.MEMBER_ROLES,
            "manage_url": manage_url,
        }
    )
    return render(request, "web/members.html", context, status=status)


def _change(request, target, user_id, manage_url):
    membership = _direct(target).filter(user_id=user_id).first()
    if membership is None:
        raise NotFound()
    principal = principal_of(request)
    try:
        if request.POST.get("action") == "remove":
            services.remove_member(principal, membership, target=target)
            messages.success(request, f"Removed {membership.user.username}.")
        else:
            data = _member_input(request.POST)
            if not data.is_valid():
                field, errors = next(iter(data.errors.items()))
                messages.error(request, f"{field} {errors[0]}")
                return redirect(manage_url)
            values = data.validated_data
            services.change_member(
                principal, membership, values["access_level"], values.get("expires_at"), target=target
            )
            messages.success(request, f"Changed {membership.user.username}'s membership.")
    except (services.GrantAboveOwn, services.LastOwner) as exc:
        messages.error(request, exc.message)
    return redirect(manage_url)


# --- projects -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
@page
def project_members(request, ref):
    project, _ = load_project(request, ref, roles.READ_PROJECT)
    can_manage = policy.can(principal_of(request), project, roles.ADMIN_PROJECT)
    context = {**project_nav(request, project), "target": project, "target_kind": "project"}
    return _members_page(request, project, context, f"/{project.full_path}/-/project_members", can_manage)


@require_POST
@login_required
@page
def project_member_change(request, ref, user_id):
    project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
    return _change(request, project, user_id, f"/{project.full_path}/-/project_members")


# --- groups ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
@page
def group_members(request, ref):
    group = load_group(request, ref, roles.READ_GROUP)
    context = {**group_nav(request, group), "target": group, "target_kind": "group"}
    can_manage = context["group_admin"]
    return _members_page(request, group, context, f"/groups/{group.full_path}/-/group_members", can_manage)


@require_POST
@login_required
@page
def group_member_change(request, ref, user_id):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    return _change(request, group, user_id, f"/groups/{group.full_path}/-/group_members")
