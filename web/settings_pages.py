"""Settings pages: the CI/CD job token allowlist, general settings (project, group) and the
project's package settings (duplicate settings of every format that has one). The cleanup
policy page is web.cleanup_pages."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import roles
from accounts.models import Group, JobTokenScopeLink, PackageRegistryAccess, Project
from accounts.services import VISIBILITY_RANK
from registry import policy, protection, services
from registry.errors import NotFound
from web import forms
from web.pages import load_group, load_project, page, principal_of, project_nav

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
    current = services.duplicate_settings(project)
    own = services.own_settings(project)
    form = forms.PackageSettingsForm(settings_by_format=current, own_settings=own)
    status = 200
    if request.method == "POST":
        form = forms.PackageSettingsForm(request.POST, settings_by_format=current, own_settings=own)
        if form.is_valid():
            with transaction.atomic():
                services.save_duplicate_settings(project, form.changes())
                services.save_own_settings(project, form.own_changes())
            messages.success(request, "Package settings saved.")
            return redirect("web:package_settings", ref=project.full_path)
        status = 400
    cleanup_url = f"/{project.full_path}/-/settings/packages_and_registries/cleanup"
    context = {
        **project_nav(request, project),
        "form": form,
        "cleanup_url": cleanup_url,
        "rules": _rule_rows(project),
        "rule_form": forms.ProtectionRuleForm(),
    }
    return render(request, "web/package_settings.html", context, status=status)


# --- package protection rules -------------------------------------------------------------------


def _rule_rows(project):
    return [
        {
            "rule": rule,
            "push": protection.level_name(rule.minimum_access_level_for_push) or "developer",
            "delete": protection.level_name(rule.minimum_access_level_for_delete) or "maintainer",
        }
        for rule in protection.rules_of(project)
    ]


def _save_rule(form, save):
    """Validate the form, then the rule (registry.protection); errors land on the form."""
    if not form.is_valid():
        return False
    try:
        save(protection.clean(form.rule_fields()))
    except protection.RuleError as exc:
        field = next((name for name in form.fields if str(exc).startswith(name)), None)
        form.add_error(field, str(exc))
        return False
    return True


def _rules_page(request, project, rule_form, rule=None, status=200):
    context = {**project_nav(request, project), "rule_form": rule_form, "rule": rule}
    return render(request, "web/protection_rule.html", context, status=status)


@require_http_methods(["POST"])
@login_required
@page
def protection_rule_add(request, ref):
    project, _ = load_project(request, ref, roles.ADMIN_PACKAGE_SETTINGS)
    form = forms.ProtectionRuleForm(request.POST)
    if _save_rule(form, lambda cleaned: protection.create(project, cleaned)):
        messages.success(request, "Protection rule added.")
        return redirect("web:package_settings", ref=project.full_path)
    return _rules_page(request, project, form, status=400)


def _rule_of(project, rule_id):
    rule = protection.rules_of(project).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound()
    return rule


@require_http_methods(["GET", "POST"])
@login_required
@page
def protection_rule_edit(request, ref, rule_id):
    project, _ = load_project(request, ref, roles.ADMIN_PACKAGE_SETTINGS)
    rule = _rule_of(project, rule_id)
    if request.method == "POST":
        form = forms.ProtectionRuleForm(request.POST)
        if _save_rule(form, lambda cleaned: protection.update(rule, cleaned)):
            messages.success(request, "Protection rule saved.")
            return redirect("web:package_settings", ref=project.full_path)
        return _rules_page(request, project, form, rule, status=400)
    initial = {
        "package_type": rule.package_type,
        "package_name_pattern": rule.package_name_pattern,
        "minimum_access_level_for_push": protection.level_name(rule.minimum_access_level_for_push) or "",
        "minimum_access_level_for_delete": protection.level_name(rule.minimum_access_level_for_delete) or "",
    }
    return _rules_page(request, project, forms.ProtectionRuleForm(initial=initial), rule)


@require_http_methods(["POST"])
@login_required
@page
def protection_rule_delete(request, ref, rule_id):
    project, _ = load_project(request, ref, roles.ADMIN_PACKAGE_SETTINGS)
    protection.delete(_rule_of(project, rule_id))
    messages.success(request, "Protection rule deleted.")
    return redirect("web:package_settings", ref=project.full_path)
