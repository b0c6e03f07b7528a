"""Token pages: deploy tokens (project, group) and access tokens (personal, project, group).
A token's secret is rendered only in the response that created it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import roles
from accounts.models import AccessToken, DeployToken, Membership, group_access_level
from accounts.roles import AccessLevel
from accounts.services import (
    create_deploy_token,
    create_personal_token,
    create_resource_token,
    revoke_resource_token,
    rotate_access_token,
)
from api.serializers import AccessTokenInput, DeployTokenInput, token_scopes
from registry.errors import NotFound
from web import forms
from web.pages import load_group, load_project, page, project_nav

# --- deploy tokens ----------------------------------------------------------------------------


def _iso_date(value):
    return value.isoformat() if value else None


def _deploy_tokens(request, owner_kind, owner):
    new_token = None
    form = forms.DeployTokenForm()
    if request.method == "POST":
        form = forms.DeployTokenForm(request.POST)
        if form.is_valid():
            data = DeployTokenInput(
                data={
                    "name": form.cleaned_data["name"],
                    "scopes": form.cleaned_data["scopes"],
                    "expires_at": _iso_date(form.cleaned_data["expires_at"]),
                    "username": form.cleaned_data["username"],
                }
            )
            if data.is_valid():
                row, secret = create_deploy_token(owner_kind, owner, data.validated_data, request.user)
                new_token = {"row": row, "secret": secret}
                form = forms.DeployTokenForm()
            else:
                forms.serializer_errors_into(form, data.errors)
    rows = DeployToken.objects.filter(**{owner_kind: owner}).order_by("-created_at", "-id")
    context = {
        "owner_kind": owner_kind,
        "owner": owner,
        "form": form,
        "new_token": new_token,
        "active_tokens": [r for r in rows if r.active],
        "inactive_tokens": [r for r in rows if not r.active],
    }
    if owner_kind == "project":
        context.update(project_nav(request, owner))
    else:
        context.update({"group": owner, "group_admin": True})
    status = 400 if request.method == "POST" and new_token is None else 200
    return render(request, "web/deploy_tokens.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@page
def project_deploy_tokens(request, ref):
    project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
    return _deploy_tokens(request, "project", project)


@require_http_methods(["GET", "POST"])
@login_required
@page
def group_deploy_tokens(request, ref):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    return _deploy_tokens(request, "group", group)


@require_POST
@login_required
@page
def project_deploy_token_revoke(request, ref, token_id):
    project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
    row = DeployToken.objects.filter(project=project, pk=token_id, revoked=False).first()
    if row is None:
        raise NotFound()
    row.revoke()
    messages.success(request, f"Revoked deploy token {row.name}.")
    return redirect("web:project_deploy_tokens", ref=project.full_path)


@require_POST
@login_required
@page
def group_deploy_token_revoke(request, ref, token_id):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    row = DeployToken.objects.filter(group=group, pk=token_id, revoked=False).first()
    if row is None:
        raise NotFound()
    row.revoke()
    messages.success(request, f"Revoked deploy token {row.name}.")
    return redirect("web:group_deploy_tokens", ref=group.full_path)


# --- access tokens ----------------------------------------------------------------------------


def _token_values(form, allowed_scopes):
    """Validate with the API's serializer; returns validated values or None (errors on form)."""
    expires = form.cleaned_data.get("expires_at")
    data = AccessTokenInput(
        data={
            "name": form.cleaned_data["name"],
            "description": form.cleaned_data.get("description") or "",
            "scopes": form.cleaned_data["scopes"],
            "expires_at": expires.isoformat() if expires else None,
        },
        allowed_scopes=allowed_scopes,
    )
    if not data.is_valid():
        forms.serializer_errors_into(form, data.errors)
        return None
    return data.validated_data


@require_http_methods(["GET", "POST"])
@login_required
def personal_tokens(request):
    user = request.user
    scopes = token_scopes(admin=user.is_superuser)
    form = forms.AccessTokenForm(scopes=scopes)
    new_token = None
    status = 200
    if request.method == "POST":
        form = forms.AccessTokenForm(request.POST, scopes=scopes)
        values = _token_values(form, scopes) if form.is_valid() and not user.is_bot else None
        if values is not None:
            row, secret = create_personal_token(user, values)
            new_token = {"row": row, "secret": secret}
            form = forms.AccessTokenForm(scopes=scopes)
        else:
            status = 400
    return _personal_page(request, form, new_token, status)


def _personal_page(request, form, new_token, status=200):
    rows = AccessToken.objects.filter(user=request.user, kind=AccessToken.Kind.PERSONAL).order_by("-created_at", "-id")
    context = {
        "title": "Personal access tokens",
        "form": form,
        "new_token": new_token,
        "active_tokens": [r for r in rows if r.active],
        "inactive_tokens": [r for r in rows if not r.active],
        "revoke_url_name": "web:personal_token_revoke",
        "rotate_url_name": "web:personal_token_rotate",
        "revoke_ref": None,
    }
    return render(request, "web/access_tokens.html", context, status=status)


@require_POST
@login_required
@page
def personal_token_rotate(request, token_id):
    """Revoke the token and show its successor's secret, once (as POST .../rotate does)."""
    row = AccessToken.objects.filter(
        user=request.user, kind=AccessToken.Kind.PERSONAL, pk=token_id, revoked=False
    ).first()
    if row is None or not row.active:
        raise NotFound()
    successor, secret = rotate_access_token(row)
    form = forms.AccessTokenForm(scopes=token_scopes(admin=request.user.is_superuser))
    return _personal_page(request, form, {"row": successor, "secret": secret, "rotated": True})


@require_POST
@login_required
@page
def personal_token_revoke(request, token_id):
    row = AccessToken.objects.filter(
        user=request.user, kind=AccessToken.Kind.PERSONAL, pk=token_id, revoked=False
    ).first()
    if row is None:
        raise NotFound()
    row.revoke()
    messages.success(request, f"Revoked personal access token {row.name}.")
    return redirect("web:personal_tokens")


def _resource_tokens(request, kind, resource, caller_level):
    scopes = token_scopes(admin=False)
    form = forms.AccessTokenForm(scopes=scopes, with_level=True, max_level=caller_level)
    new_token = None
    status = 200
    if request.method == "POST":
        form = forms.AccessTokenForm(request.POST, scopes=scopes, with_level=True, max_level=caller_level)
        values = _token_values(form, scopes) if form.is_valid() else None
        if values is not None:
            level = form.cleaned_data["access_level"]
            row, secret = create_resource_token(kind, resource, values, level)
            new_token = {"row": row, "secret": secret}
            form = forms.AccessTokenForm(scopes=scopes, with_level=True, max_level=caller_level)
        else:
            status = 400
    return _resource_page(request, kind, resource, form, new_token, status)


def _resource_page(request, kind, resource, form, new_token, status=200):
    field = f"resource_{kind}"
    rows = list(
        AccessToken.objects.filter(kind=kind, **{field: resource}).select_related("user").order_by("-created_at")
    )
    levels = dict(
        Membership.objects.filter(**{kind: resource}, user_id__in=[r.user_id for r in rows]).values_list(
            "user_id", "access_level"
        )
    )
    for row in rows:
        row.level = levels.get(row.user_id)
    context = {
        "title": f"{kind.title()} access tokens",
        "form": form,
        "new_token": new_token,
        "active_tokens": [r for r in rows if r.active],
        "inactive_tokens": [r for r in rows if not r.active],
        "revoke_url_name": f"web:{kind}_access_token_revoke",
        "rotate_url_name": f"web:{kind}_access_token_rotate",
        "revoke_ref": resource.full_path,
        "with_level": True,
    }
    if kind == "project":
        context.update(project_nav(request, resource))
    else:
        context.update({"group": resource, "group_admin": True})
    return render(request, "web/access_tokens.html", context, status=status)


def _caller_level(request, level):
    return AccessLevel.OWNER if request.user.is_superuser else level


@require_http_methods(["GET", "POST"])
@login_required
@page
def project_access_tokens(request, ref):
    project, access = load_project(request, ref, roles.ADMIN_PROJECT)
    return _resource_tokens(request, "project", project, _caller_level(request, access.level))


@require_http_methods(["GET", "POST"])
@login_required
@page
def group_access_tokens(request, ref):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    return _resource_tokens(request, "group", group, _caller_level(request, group_access_level(request.user, group)))


@require_POST
@login_required
@page
def project_access_token_revoke(request, ref, token_id):
    project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
    row = AccessToken.objects.filter(kind="project", resource_project=project, pk=token_id, revoked=False).first()
    if row is None:
        raise NotFound()
    revoke_resource_token(row)
    messages.success(request, f"Revoked access token {row.name}.")
    return redirect("web:project_access_tokens", ref=project.full_path)


@require_POST
@login_required
@page
def group_access_token_revoke(request, ref, token_id):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    row = AccessToken.objects.filter(kind="group", resource_group=group, pk=token_id, revoked=False).first()
    if row is None:
        raise NotFound()
    revoke_resource_token(row)
    messages.success(request, f"Revoked access token {row.name}.")
    return redirect("web:group_access_tokens", ref=group.full_path)


def _rotate_resource_token(request, kind, resource, caller_level, token_id):
    row = AccessToken.objects.filter(kind=kind, **{f"resource_{kind}": resource}, pk=token_id, revoked=False).first()
    if row is None or not row.active:
        raise NotFound()
    successor, secret = rotate_access_token(row)
    form = forms.AccessTokenForm(scopes=token_scopes(admin=False), with_level=True, max_level=caller_level)
    return _resource_page(request, kind, resource, form, {"row": successor, "secret": secret, "rotated": True})


@require_POST
@login_required
@page
def project_access_token_rotate(request, ref, token_id):
    project, access = load_project(request, ref, roles.ADMIN_PROJECT)
    return _rotate_resource_token(request, "project", project, _caller_level(request, access.level), token_id)


@require_POST
@login_required
@page
def group_access_token_rotate(request, ref, token_id):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    level = _caller_level(request, group_access_level(request.user, group))
    return _rotate_resource_token(request, "group", group, level, token_id)
