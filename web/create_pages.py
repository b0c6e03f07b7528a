"""New group (top-level or subgroup: `/groups/new?parent_id=<id>`) and new project
(`/projects/new?namespace_id=<id>`). The input is checked by the REST API's serializers and
created by accounts.services, so a page accepts exactly what the API accepts; who may create
where is registry.policy's decision (CREATE_SUBGROUP, CREATE_PROJECT)."""

from functools import reduce
from operator import or_

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import roles, services
from accounts.models import Group, active_memberships
from api.serializers import GroupInput, ProjectInput
from registry.errors import Forbidden
from web import forms
from web.pages import load_group, page, principal_of


def _parent_of(request):
    """The parent group a subgroup is asked for (`parent_id`), after CREATE_SUBGROUP."""
    ref = request.POST.get("parent_id") or request.GET.get("parent_id")
    if not ref:
        return None
    return load_group(request, ref, roles.CREATE_SUBGROUP)


@require_http_methods(["GET", "POST"])
@login_required
@page
def new_group(request):
    parent = _parent_of(request)
    if parent is None and not services.may_create_top_level_group(principal_of(request)):
        raise Forbidden("you may not create top-level groups")
    form = forms.NewGroupForm(initial={"visibility": parent.visibility if parent else "private"})
    status = 200
    if request.method == "POST":
        form = forms.NewGroupForm(request.POST)
        if form.is_valid():
            values = {key: value for key, value in form.cleaned_data.items() if value != ""}
            data = GroupInput(data={**values, "parent_id": parent.pk if parent else None})
            if data.is_valid():
                values = data.validated_data
                try:
                    group = services.create_group(
                        request.user,
                        name=values["name"],
                        path=values["path"],
                        parent=parent,
                        visibility=values.get("visibility"),
                        description=values.get("description", ""),
                    )
                except services.VisibilityNotAllowed as exc:
                    form.add_error("visibility", exc.message)
                except services.PathTaken as exc:
                    form.add_error("path", exc.message)
                else:
                    messages.success(request, f"Group {group.full_path} was created.")
                    return redirect("web:group_home", ref=group.full_path)
            else:
                forms.serializer_errors_into(form, data.errors)
        status = 400
    return render(request, "web/new_group.html", {"form": form, "parent": parent}, status=status)


def _project_namespaces(principal):
    """The groups where the principal may create projects (Maintainer+ there or above)."""
    if principal.is_admin:
        return Group.objects.order_by("full_path")
    paths = list(
        active_memberships(principal.user)
        .filter(group__isnull=False, access_level__gte=roles.GROUP_ACTION_LEVEL[roles.CREATE_PROJECT])
        .values_list("group__full_path", flat=True)
    )
    if not paths:
        return Group.objects.none()
    clauses = [Q(full_path=path) | Q(full_path__startswith=f"{path}/") for path in paths]
    return Group.objects.filter(reduce(or_, clauses)).order_by("full_path")


@require_http_methods(["GET", "POST"])
@login_required
@page
def new_project(request):
    principal = principal_of(request)
    ref = request.POST.get("namespace_id") if request.method == "POST" else request.GET.get("namespace_id")
    group = load_group(request, ref, roles.CREATE_PROJECT) if ref else None
    if group is None and request.user.is_bot:
        raise Forbidden("bots have no personal namespace")
    namespaces = list(_project_namespaces(principal))
    if group is not None and group not in namespaces:
        namespaces.insert(0, group)
    personal = None if request.user.is_bot else request.user.username
    form_kwargs = {"namespaces": namespaces, "personal": personal}
    initial = {"namespace_id": str(group.pk) if group else "", "visibility": "private"}
    form = forms.NewProjectForm(initial=initial, **form_kwargs)
    status = 200
    if request.method == "POST":
        form = forms.NewProjectForm(request.POST, **form_kwargs)
        if form.is_valid():
            values = {key: value for key, value in form.cleaned_data.items() if value not in ("", None)}
            values["namespace_id"] = group.pk if group else None
            data = ProjectInput(data=values)
            if data.is_valid():
                values = data.validated_data
                try:
                    project = services.create_project(
                        request.user,
                        name=values.get("name"),
                        path=values.get("path"),
                        group=group,
                        visibility=values.get("visibility"),
                        description=values.get("description", ""),
                    )
                except services.VisibilityNotAllowed as exc:
                    form.add_error("visibility", exc.message)
                except (services.PathTaken, services.InvalidPath) as exc:
                    form.add_error("path" if form.cleaned_data.get("path") else "name", f"path {exc.message}")
                else:
                    messages.success(request, f"Project {project.full_path} was created.")
                    return redirect("web:project_packages", ref=project.full_path)
            else:
                forms.serializer_errors_into(form, data.errors)
        status = 400
    context = {"form": form, "group": group}
    return render(request, "web/new_project.html", context, status=status)
