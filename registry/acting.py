"""What the current request was allowed to do: the accesses `registry.policy.authorize` granted,
by project, so that the write service can ask the policy about the one package a write touches
(protection rules name packages, which a request names only once its body is read).

A request starts with an empty record (registry.middleware.ActingMiddleware) and ends with none.
Outside a request (Celery tasks, management commands) there is no record: that work is the
system's own, and keeps its own rules (cleanup policies skip protected packages themselves).
"""

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Grant:
    access: object  # registry.policy.ProjectAccess
    action: str  # the action authorized last for the project


@dataclass
class RequestRecord:
    address: str = ""
    grants: dict = field(default_factory=dict)  # project id -> Grant


_current = contextvars.ContextVar("packhouse_acting", default=None)


def current():
    """The current request's record, or None outside a request."""
    return _current.get()


@contextmanager
def request_scope(address=""):
    token = _current.set(RequestRecord(address=address))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def grant(access, action):
    """Note that `access` (its principal, on its project) was allowed `action`."""
    record = _current.get()
    if record is not None:
        record.grants[access.project.pk] = Grant(access, action)


def grant_for(project_id):
    record = _current.get()
    return record.grants.get(project_id) if record is not None else None
