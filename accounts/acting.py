"""Who is acting now, from where, and what the policy allowed them: one record per request
(registry.middleware.ActingMiddleware opens it, nothing of it outlives the request), or a named
system actor for background work (`as_system("cleanup policy")`).

- `registry.policy.authorize` notes each access it grants (`grant`), by project, so that the
  write service can ask the policy about the one package a write touches (protection rules name
  packages, which a request names only once its body is read);
- the audit trail (accounts.audit) takes the actor and the address of every event from here.

Outside a request and outside `as_system` there is no record: that work is the system's own.
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
    request_line: str = ""  # "PUT /api/v4/..." (the path, never the query string)
    principal: object = None  # accounts.principals.Principal, once known
    system: str = ""  # the name of a background actor ("cleanup policy"); empty in requests
    grants: dict = field(default_factory=dict)  # project id -> Grant


_current = contextvars.ContextVar("packhouse_acting", default=None)


def current():
    """The current record, or None outside a request and outside `as_system`."""
    return _current.get()


@contextmanager
def request_scope(address="", request_line=""):
    token = _current.set(RequestRecord(address=address, request_line=request_line))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


@contextmanager
def as_system(name):
    """Background work done by the system itself (a cleanup policy, the retention task)."""
    token = _current.set(RequestRecord(system=name))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def note_principal(principal):
    """Who the current request authenticated as (the first credential wins: there is one)."""
    record = _current.get()
    if record is not None and not record.system and principal is not None and not principal.is_anonymous:
        record.principal = principal


def grant(access, action):
    """Note that `access` (its principal, on its project) was allowed `action`."""
    record = _current.get()
    if record is not None:
        record.grants[access.project.pk] = Grant(access, action)
        note_principal(access.principal)
