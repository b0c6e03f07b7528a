"""Server-rendered pages: dashboard, package lists and details, settings, user tokens.

Every permission decision is `registry.policy`'s, asked with a session Principal. Errors map
to pages: not signed in and not allowed -> sign-in redirect, not visible -> 404, visible but
not allowed -> 403. Token secrets are rendered only in the response that created them.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import roles, tokens
from accounts.models import (
    AccessToken,
    DeployToken,
    Group,
    JobTokenScopeLink,
    Membership,
    PackageRegistryAccess,
    Project,
    group_access_level,
)
from accounts.principals import ANONYMOUS_PRINCIPAL, SESSION, Principal
from accounts.roles import AccessLevel
from accounts.services import VISIBILITY_RANK, create_personal_token, create_resource_token, revoke_resource_token
from api.serializers import AccessTokenInput, DeployTokenInput, base_url, token_scopes
from registry import policy, services
from registry.errors import Forbidden, NotFound, Unauthenticated
from registry.models import LISTED, PackageFile, PackageSettings, PackageVersion, Status
from web import forms
from web.snippets import install_snippets

FORMATS = ("generic", "maven", "npm", "nuget", "pypi")
SORTS = {
    "created_desc": ("-created_at", "-id"),
    "created_asc": ("created_at", "id"),
    "name_asc": ("package__name", "version", "id"),
    "name_desc": ("-package__name", "-version", "-id"),
    "version_desc": ("-version", "-id"),
    "version_asc": ("version", "id"),
}
PER_PAGE = 20
WEB_VISIBLE = (Status.DEFAULT, Status.DEPRECATED)


def principal_of(request):
    if request.user.is_authenticated and request.user.is_active:
        return Principal(kind=SESSION, user=request.user, scopes=frozenset({"api"}))
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
        except Forbidden:
            return render(
                request, "web/error.html", {"status": 403, "message": "You are not allowed to do this"}, status=403
            )

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
    }


def group_can_admin(request, group):
    principal = principal_of(request)
    try:
        policy.authorize_group(principal, group, roles.ADMIN_GROUP)
    except (Unauthenticated, NotFound, Forbidden):
        return False
    return True


# --- dashboard --------------------------------------------------------------------------------


@require_GET
@login_required
def dashboard(request):
    principal = principal_of(request)
    projects = policy.visible_projects(principal).annotate(package_count=Count("packages", distinct=True))
    groups = policy.visible_groups(principal).order_by("full_path")
    member_projects = set(
        Membership.objects.filter(user=request.user, project__isnull=False).values_list("project_id", flat=True)
    )
    return render(
        request,
        "web/dashboard.html",
        {"projects": projects.order_by("full_path"), "groups": groups, "member_projects": member_projects},
    )


# --- packages ---------------------------------------------------------------------------------


def _filtered_versions(request, versions):
    fmt = request.GET.get("format", "")
    name = request.GET.get("name", "").strip()
    sort = request.GET.get("sort", "created_desc")
    if sort not in SORTS:
        sort = "created_desc"
    versions = versions.filter(status__in=LISTED)
    if fmt in FORMATS:
        versions = versions.filter(package__format=fmt)
    if name:
        versions = versions.filter(package__name__icontains=name)
    versions = versions.select_related("package__project", "creator").order_by(*SORTS[sort])
    paginator = Paginator(versions, PER_PAGE)
    return paginator.get_page(request.GET.get("page")), {"format": fmt, "name": name, "sort": sort}


@require_GET
@page
def project_packages(request, ref):
    project, _ = load_project(request, ref, roles.READ_PACKAGE)
    versions, filters = _filtered_versions(request, PackageVersion.objects.filter(package__project=project))
    context = {**project_nav(request, project), "versions": versions, "filters": filters, "formats": FORMATS}
    return render(request, "web/package_list.html", context)


@require_GET
@page
def group_packages(request, ref):
    group = load_group(request, ref, roles.READ_PACKAGE)
    projects = policy.pullable_projects(principal_of(request), group)
    versions, filters = _filtered_versions(request, PackageVersion.objects.filter(package__project__in=projects))
    context = {
        "group": group,
        "group_admin": group_can_admin(request, group),
        "versions": versions,
        "filters": filters,
        "formats": FORMATS,
    }
    return render(request, "web/package_list.html", context)


def _version_in(project, package_id, statuses=WEB_VISIBLE):
    version = (
        PackageVersion.objects.select_related("package__project", "creator", "deploy_token", "ci_job")
        .filter(package__project=project, pk=package_id, status__in=statuses)
        .first()
    )
    if version is None:
        raise NotFound()
    return version


@require_GET
@page
def package_detail(request, ref, package_id):
    project, _ = load_project(request, ref, roles.READ_PACKAGE)
    version = _version_in(project, package_id)
    principal = principal_of(request)
    files = list(
        version.files.filter(status=PackageFile.FileStatus.DEFAULT).select_related("blob").order_by("file_name", "id")
    )
    others = (
        PackageVersion.objects.filter(package=version.package, status__in=WEB_VISIBLE)
        .exclude(pk=version.pk)
        .order_by("-created_at")
    )
    snippets = install_snippets(
        version.package.format,
        base_url(request),
        project,
        version.package.name,
        version.version,
        [f.file_name for f in files],
    )
    context = {
        **project_nav(request, project),
        "version": version,
        "package": version.package,
        "files": files,
        "total_size": sum(f.blob.size for f in files),
        "others": others,
        "snippets": snippets,
        "can_delete": policy.can(principal, project, roles.DESTROY_PACKAGE),
        "can_delete_file": policy.can(principal, project, roles.DESTROY_PACKAGE_FILE),
    }
    return render(request, "web/package_detail.html", context)


@require_POST
@page
def package_delete(request, ref, package_id):
    project, _ = load_project(request, ref, roles.DESTROY_PACKAGE)
    version = _version_in(project, package_id, statuses=[s for s in Status.values if s != Status.PENDING_DESTRUCTION])
    services.mark_version_for_destruction(version)
    messages.success(request, f"Deleted {version.package.name} {version.version}.")
    return redirect("web:project_packages", ref=project.full_path)


@require_POST
@page
def package_file_delete(request, ref, package_id, file_id):
    project, _ = load_project(request, ref, roles.DESTROY_PACKAGE_FILE)
    version = _version_in(project, package_id, statuses=[s for s in Status.values if s != Status.PENDING_DESTRUCTION])
    package_file = version.files.filter(pk=file_id, status=PackageFile.FileStatus.DEFAULT).first()
    if package_file is None:
        raise NotFound()
    services.mark_file_for_destruction(package_file)
    messages.success(request, f"Deleted file {package_file.file_name}.")
    return redirect("web:package_detail", ref=project.full_path, package_id=version.pk)


@require_GET
@page
def project_home(request, ref):
    project, _ = load_project(request, ref, roles.READ_PROJECT)
    return redirect("web:project_packages", ref=project.full_path)


@require_GET
@page
def group_home(request, ref):
    group = load_group(request, ref, roles.READ_GROUP)
    return redirect("web:group_packages", ref=group.full_path)


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
                values = data.validated_data
                row = DeployToken(
                    name=values["name"],
                    username=values.get("username") or "",
                    scopes=values["scopes"],
                    expires_at=values.get("expires_at"),
                    creator=request.user,
                    **{owner_kind: owner},
                )
                new_token = {"row": row, "secret": tokens.issue(row, tokens.DEPLOY_PREFIX)}
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
    rows = AccessToken.objects.filter(user=user, kind=AccessToken.Kind.PERSONAL).order_by("-created_at", "-id")
    context = {
        "title": "Personal access tokens",
        "form": form,
        "new_token": new_token,
        "active_tokens": [r for r in rows if r.active],
        "inactive_tokens": [r for r in rows if not r.active],
        "revoke_url_name": "web:personal_token_revoke",
        "revoke_ref": None,
    }
    return render(request, "web/access_tokens.html", context, status=status)


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


# --- CI/CD job token allowlist ------------------------------------------------------------------


def _allowlist_add(request, project, form):
    principal = principal_of(request)
    kind, path = form.cleaned_data["kind"], form.cleaned_data["path"].strip().strip("/")
    if kind == "project":
        target = policy.resolve_project(path)
        if target is None or not policy.ProjectAccess(principal, target).visible():
            form.add_error("path", f"Project {path!r} was not found.")
            return False
        if target.pk == project.pk:
            form.add_error("path", "A project is always in its own allowlist.")
            return False
        link = {"target_project": target}
    else:
        target = policy.resolve_group(path)
        if target is None or not policy.group_visible(principal, target):
            form.add_error("path", f"Group {path!r} was not found.")
            return False
        link = {"target_group": target}
    if JobTokenScopeLink.objects.filter(source_project=project).count() >= JobTokenScopeLink.MAX_ENTRIES:
        form.add_error(None, f"The allowlist can hold at most {JobTokenScopeLink.MAX_ENTRIES} projects and groups.")
        return False
    try:
        with transaction.atomic():
            JobTokenScopeLink.objects.create(source_project=project, added_by=request.user, **link)
    except IntegrityError:
        form.add_error("path", f"{target.full_path} is already in the allowlist.")
        return False
    messages.success(request, f"Added {target.full_path} to the allowlist.")
    return True


@require_http_methods(["GET", "POST"])
@login_required
@page
def job_token_scope(request, ref):
    project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
    form = forms.AllowlistAddForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "toggle":
            project.ci_job_token_scope_enabled = request.POST.get("enabled") == "on"
            project.save(update_fields=["ci_job_token_scope_enabled"])
            state = "limited to the allowlist" if project.ci_job_token_scope_enabled else "open to every project"
            messages.success(request, f"Job token access is now {state}.")
            return redirect("web:job_token_scope", ref=project.full_path)
        if action == "remove":
            link_id = request.POST.get("link_id", "")
            deleted = 0
            if link_id.isdigit():
                deleted, _ = JobTokenScopeLink.objects.filter(source_project=project, pk=int(link_id)).delete()
            if not deleted:
                raise NotFound()
            messages.success(request, "Removed from the allowlist.")
            return redirect("web:job_token_scope", ref=project.full_path)
        if action == "add":
            form = forms.AllowlistAddForm(request.POST)
            if form.is_valid() and _allowlist_add(request, project, form):
                return redirect("web:job_token_scope", ref=project.full_path)
            status = 400
        else:
            status = 400
    links = (
        JobTokenScopeLink.objects.filter(source_project=project)
        .select_related("target_project", "target_group", "added_by")
        .order_by("created_at", "id")
    )
    context = {**project_nav(request, project), "form": form, "links": links}
    context["max_entries"] = JobTokenScopeLink.MAX_ENTRIES
    return render(request, "web/job_token_scope.html", context, status=status)


# --- general and package settings ---------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
@page
def project_general(request, ref):
    project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
    initial = {"visibility": project.visibility, "allow_anyone_to_pull": project.allows_anyone_to_pull}
    form = forms.GeneralSettingsForm(initial=initial)
    status = 200
    if request.method == "POST":
        form = forms.GeneralSettingsForm(request.POST)
        group = project.group
        if (
            form.is_valid()
            and group is not None
            and (VISIBILITY_RANK[form.cleaned_data["visibility"]] > VISIBILITY_RANK[group.visibility])
        ):
            form.add_error(
                "visibility",
                f"Visibility level {form.cleaned_data['visibility']} is not allowed in a {group.visibility} group.",
            )
        if form.is_valid():
            project.visibility = form.cleaned_data["visibility"]
            if form.cleaned_data["allow_anyone_to_pull"]:
                project.package_registry_access_level = PackageRegistryAccess.PUBLIC
            elif project.package_registry_access_level == PackageRegistryAccess.PUBLIC:
                project.package_registry_access_level = PackageRegistryAccess.ENABLED
            project.save(update_fields=["visibility", "package_registry_access_level"])
            messages.success(request, "Settings saved.")
            return redirect("web:project_general", ref=project.full_path)
        status = 400
    context = {**project_nav(request, project), "form": form}
    return render(request, "web/project_general.html", context, status=status)


def _group_visibility_error(group, visibility):
    """GitLab's rules: a group is no more visible than its parent, and no less visible than
    anything inside it (projects and subgroups, at any depth)."""
    rank = VISIBILITY_RANK[visibility]
    parent = group.parent
    if parent is not None and rank > VISIBILITY_RANK[parent.visibility]:
        return f"Visibility level {visibility} is not allowed in a {parent.visibility} parent group."
    higher = [v for v, r in VISIBILITY_RANK.items() if r > rank]
    if Project.objects.filter(group__in=group.descendants(), visibility__in=higher).exists():
        return (
            f"Visibility level {visibility} is not allowed since this group contains projects with higher visibility."
        )
    if group.descendants(include_self=False).filter(visibility__in=higher).exists():
        return (
            f"Visibility level {visibility} is not allowed since this group contains subgroups with higher visibility."
        )
    return None


@require_http_methods(["GET", "POST"])
@login_required
@page
def group_general(request, ref):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    form = forms.GroupGeneralSettingsForm(initial={"visibility": group.visibility})
    status = 200
    if request.method == "POST":
        form = forms.GroupGeneralSettingsForm(request.POST)
        if form.is_valid():
            with transaction.atomic():
                # Two concurrent saves of this group's settings are checked one after the other.
                locked = Group.objects.select_for_update().get(pk=group.pk)
                error = _group_visibility_error(locked, form.cleaned_data["visibility"])
                if error is None:
                    locked.visibility = form.cleaned_data["visibility"]
                    locked.save(update_fields=["visibility"])
            if error is None:
                messages.success(request, "Settings saved.")
                return redirect("web:group_general", ref=group.full_path)
            form.add_error("visibility", error)
        status = 400
    context = {"group": group, "group_admin": True, "form": form}
    return render(request, "web/group_general.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@page
def package_settings(request, ref):
    project, _ = load_project(request, ref, roles.ADMIN_PACKAGE_SETTINGS)
    row = PackageSettings.objects.filter(project=project).first() or PackageSettings(project=project)
    form = forms.PackageSettingsForm(instance=row)
    status = 200
    if request.method == "POST":
        form = forms.PackageSettingsForm(request.POST, instance=row)
        if form.is_valid():
            form.save()
            messages.success(request, "Package settings saved.")
            return redirect("web:package_settings", ref=project.full_path)
        status = 400
    cleanup_url = f"/{project.full_path}/-/settings/packages_and_registries/cleanup"
    context = {**project_nav(request, project), "form": form, "cleanup_url": cleanup_url}
    return render(request, "web/package_settings.html", context, status=status)
