"""Audit event pages: a project's (Maintainers), a group's with its subgroups and projects
(Owners), and the whole instance's (administrators), with the REST API's filters
(accounts.audit_queries). Nothing here changes an event."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import audit_queries, roles
from registry.errors import Forbidden, Invalid
from web.pages import group_can_admin, load_group, load_project, page, principal_of, project_nav

PER_PAGE = 50
FILTERS = ("created_after", "created_before", "entity_type")


def _render(request, events, context):
    params = {name: request.GET.get(name, "").strip() for name in FILTERS}
    try:
        events = audit_queries.filtered(events, params)
    except audit_queries.FilterError as exc:
        raise Invalid(str(exc)) from None
    page_ = Paginator(events, PER_PAGE).get_page(request.GET.get("page"))
    context = {**context, "events": page_, "filters": params, "entity_types": audit_queries.ENTITY_TYPES}
    return render(request, "web/audit_events.html", context)


@require_GET
@login_required
@page
def project_audit_events(request, ref):
    project, _ = load_project(request, ref, roles.ADMIN_PROJECT)
    return _render(request, audit_queries.for_project(project), project_nav(request, project))


@require_GET
@login_required
@page
def group_audit_events(request, ref):
    group = load_group(request, ref, roles.ADMIN_GROUP)
    context = {"group": group, "group_admin": group_can_admin(request, group)}
    return _render(request, audit_queries.for_group(group), context)


@require_GET
@login_required
@page
def instance_audit_events(request):
    if not principal_of(request).is_admin:
        raise Forbidden()
    return _render(request, audit_queries.for_instance(), {"instance": True})
