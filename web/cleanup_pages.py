"""Server-rendered settings pages (Django session, CSRF-protected forms).

`/<project full path>/-/settings/packages_and_registries/cleanup`: the project's cleanup
policy, with the list of what it would remove now (a dry run). Signed-in users only
(others are sent to settings.LOGIN_URL); Maintainer+ through the policy; a project the user
cannot see is 404, one they see without the role is 403.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from accounts import roles
from accounts.principals import SESSION, Principal
from registry import cleanup, policy
from registry.errors import Forbidden, NotFound, Unauthenticated
from registry.models import CleanupPolicy


class CleanupPolicyForm(forms.Form):
    keep_n_duplicated_package_files = forms.ChoiceField(
        label="Keep duplicated package files",
        choices=[(v, "all (keep every file)" if v == "all" else v) for v in CleanupPolicy.KEEP_N_DUPLICATED_CHOICES],
    )
    keep_n_versions = forms.CharField(label="Keep the N newest versions of each package", required=False)
    older_than_days = forms.CharField(label="Remove versions older than (days)", required=False)
    name_regex_keep = forms.CharField(label="Keep packages matching (regex)", required=False, max_length=255)
    name_regex_delete = forms.CharField(label="Remove packages matching (regex)", required=False, max_length=255)

    def clean(self):
        data = super().clean()
        try:
            return cleanup.clean({name: data.get(name) for name in cleanup.FIELDS})
        except cleanup.PolicyError as exc:
            raise forms.ValidationError(str(exc)) from None


def _project_for(request, project_ref):
    principal = Principal(kind=SESSION, user=request.user, scopes=frozenset({"api"}))
    project = policy.resolve_project(project_ref)
    if project is None:
        raise Http404("Project not found")
    try:
        policy.authorize(principal, project, roles.ADMIN_PACKAGE_SETTINGS)
    except (NotFound, Unauthenticated):
        raise Http404("Project not found") from None
    except Forbidden:
        raise PermissionDenied from None
    return project


@require_http_methods(["GET", "POST"])
@login_required
@csrf_protect
def cleanup_policy_page(request, project_ref):
    project = _project_for(request, project_ref)
    current = cleanup.policy_for(project)
    if request.method == "POST":
        form = CleanupPolicyForm(request.POST)
        if form.is_valid():
            cleanup.save(project, form.cleaned_data)
            return redirect(request.path)
    else:
        values = {name: getattr(current, name) for name in cleanup.FIELDS}
        form = CleanupPolicyForm(initial={name: "" if value is None else value for name, value in values.items()})
    context = {
        "project": project,
        "policy": current,
        "active": cleanup.is_active(current),
        "form": form,
        "dry_run": cleanup.describe(cleanup.plan(current)),
    }
    return render(request, "registry/cleanup_policy.html", context, status=400 if form.is_bound else 200)
