"""What every page shares: the session Principal, the policy's refusals turned into pages
(not signed in and not allowed -> sign-in redirect, not visible -> 404, visible but not
allowed -> 403), loading the project or group a URL names, and the navigation context.

Every permission decision is `registry.policy`'s, asked with a session Principal.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from accounts import acting, roles
from accounts.principals import ANONYMOUS_PRINCIPAL, SESSION, Principal
from registry import policy
from registry.errors import Forbidden, NotFound, Unauthenticated


def principal_of(request):
    if request.user.is_authenticated and request.user.is_active:
        principal = Principal(kind=SESSION, user=request.user, scopes=frozenset({"api"}))
        acting.note_principal(principal)
        return principal
    return ANONYMOUS_PRINCIPAL


def page(view):
    """Turn the policy's refusals into pages (sign-in redirect, 404, 403)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Unauthenticated:
            return redirect_to_login(request.get_full_path())
        except NotFound:
            return render(request, "web/error.html", {"status": 404, "message": "Page not found"}, status=404)
        except Forbidden as exc:
            # A refusal that says why (a protected package) says so; any other says nothing more.
            message = exc.message.removeprefix("403 Forbidden - ")
            if exc.message == Forbidden.default_message:
                message = "You are not allowed to do this"
            return render(request, "web/error.html", {"status": 403, "message": message}, status=403)

    return wrapper


def load_project(request, ref, action):
    principal = principal_of(request)
    project = policy.resolve_project(ref)
    if project is None:
        policy.deny_unknown(principal, "Project")
    access = policy.authorize(principal, project, action)
    return project, access


def load_group(request, ref, action):
    principal = principal_of(request)
    group = policy.resolve_group(ref)
    if group is None:
        policy.deny_unknown(principal, "Group")
    policy.authorize_group(principal, group, action)
    return group


def project_nav(request, project):
    """Which settings tabs the caller may open (policy decides each)."""
    principal = principal_of(request)
    admin = policy.can(principal, project, roles.ADMIN_PROJECT)
    return {
        "project": project,
        "can_admin": admin,
        "can_package_settings": policy.can(principal, project, roles.ADMIN_PACKAGE_SETTINGS),
        "can_read_statistics": policy.can(principal, project, roles.READ_STATISTICS),
    }


def group_can(request, group, action):
    """Whether the policy lets the caller do `action` on the group."""
    try:
        policy.authorize_group(principal_of(request), group, action)
    except (Unauthenticated, NotFound, Forbidden):
        return False
    return True


def group_can_admin(request, group):
    return group_can(request, group, roles.ADMIN_GROUP)


def group_nav(request, group):
    """What the group's tabs and buttons need: which the caller may use (policy decides each)."""
    return {
        "group": group,
        "group_admin": group_can_admin(request, group),
        "can_create_project": group_can(request, group, roles.CREATE_PROJECT),
        "can_create_subgroup": group_can(request, group, roles.CREATE_SUBGROUP),
        "can_read_statistics": group_can(request, group, roles.READ_STATISTICS),
    }
