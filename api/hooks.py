"""Project and group hooks for package events, in GitLab's hook API shape:
`GET/POST /projects/:id/hooks`, `GET/PUT/DELETE .../:hook_id`, `POST .../:hook_id/test/:trigger`,
`GET .../:hook_id/events` (the delivery log) and `POST .../:hook_id/events/:hook_log_id/resend`,
the same under `/groups/:id`. Maintainers manage a project's hooks, Owners a group's. The token
is accepted and stored encrypted (registry.secrets), never answered."""

from rest_framework import status
from rest_framework.response import Response

from accounts import roles
from api.base import ManagementView, not_found
from api.exceptions import ApiError
from api.serializers import iso
from registry import webhooks
from registry.models import Webhook


def hook_json(hook):
    data = {
        "id": hook.pk,
        "url": hook.url,
        "name": hook.name,
        "description": hook.description,
        "package_events": hook.package_events,
        "enable_ssl_verification": hook.enable_ssl_verification,
        "alert_status": "disabled" if hook.disabled_at else "executable",
        "disabled_until": None,
        "disabled_at": iso(hook.disabled_at),
        "recent_failures": hook.consecutive_failures,
        "created_at": iso(hook.created_at),
    }
    data["project_id" if hook.project_id else "group_id"] = hook.project_id or hook.group_id
    return data


def delivery_json(delivery):
    return {
        "id": delivery.pk,
        "event": delivery.event,
        "attempt": delivery.attempt,
        "response_status": delivery.status_code,
        "execution_duration": delivery.duration_ms / 1000 if delivery.duration_ms is not None else None,
        "response_body": delivery.response_excerpt,
        "error": delivery.error,
        "request_data": delivery.payload,
        "created_at": iso(delivery.created_at),
        "delivered_at": iso(delivery.delivered_at),
    }


def _fields(request):
    data = request.data
    if not hasattr(data, "keys"):
        raise ApiError(400, "400 Bad request - the body must be an object")
    return {name: data.get(name) for name in webhooks.FIELDS if name in data}


class HookMixin:
    owner_kind = "project"

    def owner(self, ref):
        if self.owner_kind == "project":
            return self.get_project(ref, roles.ADMIN_PROJECT)
        return self.get_group(ref, roles.ADMIN_GROUP)

    def hooks(self, owner):
        return Webhook.objects.filter(**{self.owner_kind: owner}).order_by("id")

    def hook(self, ref, hook_id):
        return self.hooks(self.owner(ref)).filter(pk=hook_id).first() or not_found("Hook")

    def cleaned(self, request, partial=False):
        try:
            return webhooks.clean(_fields(request), partial=partial)
        except webhooks.HookError as exc:
            raise ApiError(400, f"400 Bad request - {exc}") from None


class HooksView(HookMixin, ManagementView):
    def get(self, request, ref):
        return self.paginate(self.hooks(self.owner(ref)), hook_json)

    def post(self, request, ref):
        owner = self.owner(ref)
        hook = webhooks.save(Webhook(**{self.owner_kind: owner}), self.cleaned(request))
        return Response(hook_json(hook), status=status.HTTP_201_CREATED)


class HookDetailView(HookMixin, ManagementView):
    def get(self, request, ref, hook_id):
        return Response(hook_json(self.hook(ref, hook_id)))

    def put(self, request, ref, hook_id):
        hook = self.hook(ref, hook_id)
        return Response(hook_json(webhooks.save(hook, self.cleaned(request, partial=True))))

    def delete(self, request, ref, hook_id):
        self.hook(ref, hook_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class HookTestView(HookMixin, ManagementView):
    def post(self, request, ref, hook_id, trigger):
        if trigger != "package_events":
            raise ApiError(422, "422 Unprocessable Entity - only package_events can be tested")
        webhooks.test_event(self.hook(ref, hook_id))
        return Response({"message": "201 Created"}, status=status.HTTP_201_CREATED)


class HookEventsView(HookMixin, ManagementView):
    def get(self, request, ref, hook_id):
        hook = self.hook(ref, hook_id)
        return self.paginate(hook.deliveries.order_by("-id"), delivery_json)


class HookResendView(HookMixin, ManagementView):
    def post(self, request, ref, hook_id, delivery_id):
        hook = self.hook(ref, hook_id)
        delivery = hook.deliveries.filter(pk=delivery_id).first() or not_found("Hook log")
        again = webhooks.resend(delivery)
        return Response({"id": again.pk}, status=status.HTTP_201_CREATED)
