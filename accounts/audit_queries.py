"""Which audit events a listing shows: the instance's, a group's (with its subgroups and the
projects under them) or a project's, narrowed by GitLab's filters. Shared by the REST API and
the pages, which therefore list exactly the same events."""

from datetime import UTC, datetime, time

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import AuditEvent, Project

ENTITY_TYPES = ("Project", "Group", "User", "Instance")


class FilterError(ValueError):
    """A filter value that cannot be read; the message names the parameter."""


def for_instance():
    return AuditEvent.objects.all()


def for_group(group):
    projects = Project.objects.filter(Q(group_id=group.pk) | Q(full_path__startswith=f"{group.full_path}/"))
    return AuditEvent.objects.filter(
        Q(entity_type="Group", entity_id__in=group.descendants().values("pk"))
        | Q(entity_type="Project", entity_id__in=projects.values("pk"))
    )


def for_project(project):
    return AuditEvent.objects.filter(entity_type="Project", entity_id=project.pk)


def _moment(name, value, end_of_day):
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise FilterError(f"{name} is invalid")
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def filtered(events, params):
    """GitLab's filters: `created_after`, `created_before` (ISO 8601 date or time), `entity_type`
    and `entity_id`; newest first."""
    try:
        if params.get("created_after"):
            events = events.filter(created_at__gte=_moment("created_after", params["created_after"], False))
        if params.get("created_before"):
            events = events.filter(created_at__lte=_moment("created_before", params["created_before"], True))
    except FilterError:
        raise
    except ValueError:  # parse_datetime raises on well-formed but impossible values (month 13)
        raise FilterError("created_after or created_before is invalid") from None
    entity_type = params.get("entity_type")
    if entity_type:
        if entity_type not in ENTITY_TYPES:
            raise FilterError("entity_type does not have a valid value")
        events = events.filter(entity_type=entity_type)
    entity_id = params.get("entity_id")
    if entity_id:
        if not (entity_id.isascii() and entity_id.isdigit() and len(entity_id) <= 18):
            raise FilterError("entity_id is invalid")
        events = events.filter(entity_id=int(entity_id))
    return events.select_related("author").order_by("-created_at", "-id")
