"""Usage quotas (`/<project>/-/usage_quotas`, `/groups/<group>/-/usage_quotas`, GitLab's paths):
the storage a project's or a group's packages take, what de-duplication saved and the largest
packages' shares. The same figures as `statistics=true` on the projects and groups API, for the
same callers (READ_STATISTICS: Reporter+ of a project, Owner of a group)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import roles
from accounts.models import Project
from registry import policy, usage
from web.pages import group_nav, load_group, load_project, page, project_nav

TOP = 20


def _context(report):
    rows = [
        {"id": pk, "name": name, "format": fmt, "project": path, "size": size, "share": report.share(size)}
        for pk, name, fmt, path, size in report.packages
    ]
    return {"usage": report, "rows": rows}


@require_GET
@login_required
@page
def project_usage(request, ref):
    project, _ = load_project(request, ref, roles.READ_STATISTICS)
    report = usage.usage_of(Project.objects.filter(pk=project.pk), top=TOP)
    context = {**project_nav(request, project), **_context(report), "target": project, "target_kind": "project"}
    return render(request, "web/usage.html", context)


@require_GET
@login_required
@page
def group_usage(request, ref):
    group = load_group(request, ref, roles.READ_STATISTICS)
    report = usage.usage_of(policy.projects_under(group), top=TOP)
    context = {**group_nav(request, group), **_context(report), "target": group, "target_kind": "group"}
    return render(request, "web/usage.html", context)
