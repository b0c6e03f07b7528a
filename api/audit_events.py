"""Audit events (GitLab's API): `GET /audit_events` and `/audit_events/:id` (instance admins),
`GET /groups/:id/audit_events` (Owners; the group, its subgroups and their projects),
`GET /projects/:id/audit_events` (Maintainers), each with `created_after`, `created_before`,
`entity_type` (and `entity_id`) and GitLab's pagination headers. Read only: no route changes
an event."""

from rest_framework.response import Response

from accounts import audit_queries, roles
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.serializers import iso


def event_json(event):
    details = {
        "author_name": event.author_name,
        "author_class": event.author_kind,
        "target_id": event.target_id,
        "target_type": event.target_type,
        "target_details": event.target_details,
        "ip_address": event.ip_address,
        "entity_path": event.entity_path,
        **event.details,
    }
    if event.token_id is not None:
        details["token"] = {"kind": event.author_kind, "id": event.token_id, "name": event.token_name}
    return {
        "id": event.pk,
        "author_id": event.author_id,
        "entity_id": event.entity_id,
        "entity_type": event.entity_type,
        "event_name": event.action,
        "details": details,
        "created_at": iso(event.created_at),
    }


class AuditEventsView(ManagementView):
    """`scope` is "instance", "group" or "project"."""

    scope = "instance"

    def get(self, request, ref=None):
        if self.scope == "instance":
            self.require_admin()
            events = audit_queries.for_instance()
        elif self.scope == "group":
            events = audit_queries.for_group(self.get_group(ref, roles.ADMIN_GROUP))
        else:
            events = audit_queries.for_project(self.get_project(ref, roles.ADMIN_PROJECT))
        try:
            events = audit_queries.filtered(events, request.query_params)
        except audit_queries.FilterError as exc:
            raise ApiError(400, f"400 Bad request - {exc}") from None
        return self.paginate(events, event_json)


class AuditEventDetailView(ManagementView):
    def get(self, request, event_id):
        self.require_admin()
        event = audit_queries.for_instance().filter(pk=event_id).first()
        if event is None:
            not_found("Audit event")
        return Response(event_json(event))
