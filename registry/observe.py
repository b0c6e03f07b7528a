"""Every request, observed once at the WSGI edge (`ObserveApplication`, around the response cache
and Django): a request id (answered in `X-Request-Id`), the /-/metrics request counters
(registry.metrics) and, with PACKHOUSE_LOG_FORMAT=json, one JSON line per request on the
`packhouse.request` logger.

What only Django knows (the route's pattern, the format, who asked with which credential, which
project) is left in the WSGI environ as the request's facts by `FactsMiddleware` and the views
(`note_target`); an answer the response cache replays carries the facts it was remembered with.
Never a secret: a credential is named by its kind and row id.
"""

import json
import logging
import time
import uuid

from django.conf import settings

from registry import metrics

FACTS = "packhouse.facts"
TARGET = "packhouse.target"
REQUEST_ID = "packhouse.request_id"
NO_FACTS = {"format": "", "route": "unmatched"}

request_logger = logging.getLogger("packhouse.request")


def format_of(request):
    """The format of the package view a Django request was routed to, else "" (no query)."""
    match = getattr(request, "resolver_match", None)
    view = getattr(getattr(match, "func", None), "cls", None)
    return str(getattr(getattr(view, "package_format", None), "name", "") or "")


def note_target(request, target):
    """Record the project (or group) a request acts on, for its log line."""
    getattr(request, "_request", request).META[TARGET] = target.full_path


def facts_of(request):
    """The facts of a Django request once answered: route pattern (never the path), format,
    user, credential kind and id, project."""
    match = getattr(request, "resolver_match", None)
    facts = {
        "format": format_of(request),
        "route": match.route if match is not None and match.route else "unmatched",
    }
    principal = getattr(request, "auth", None)
    if principal is not None and hasattr(principal, "token_kind"):
        credential = principal.access_token or principal.deploy_token or principal.job
        facts.update(
            user=principal.user.username if principal.user is not None else None,
            credential_kind=principal.token_kind,
            credential_id=credential.pk if credential is not None else None,
        )
    elif getattr(getattr(request, "user", None), "is_authenticated", False):
        facts.update(user=request.user.username, credential_kind="session", credential_id=None)
    else:
        facts.update(user=None, credential_kind="anonymous", credential_id=None)
    if TARGET in request.META:
        facts["project"] = request.META[TARGET]
    return facts


class FactsMiddleware:
    """Leaves the request's facts in the WSGI environ for ObserveApplication (outermost)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        request.META[FACTS] = facts_of(request)
        return response


class ObserveApplication:
    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        environ[REQUEST_ID] = request_id
        answered = {}

        def observed_start_response(status, headers, exc_info=None):
            answered["status"] = status.split(" ", 1)[0]
            answered["length"] = next((v for k, v in headers if k.lower() == "content-length"), None)
            headers = [*headers, ("X-Request-Id", request_id)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.application(environ, observed_start_response)
        duration = time.monotonic() - started
        facts = environ.get(FACTS, NO_FACTS)
        method = environ.get("REQUEST_METHOD", "")
        status = answered.get("status", "")
        metrics.REQUESTS.labels(facts["format"], facts["route"], method, status).inc()
        metrics.DURATION.labels(facts["format"]).observe(duration)
        if settings.LOG_FORMAT == "json":
            request_logger.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": method,
                        "route": facts["route"],
                        "format": facts["format"] or None,
                        "user": facts.get("user"),
                        "credential_kind": facts.get("credential_kind"),
                        "credential_id": facts.get("credential_id"),
                        "project": facts.get("project"),
                        "status": int(status) if status.isdigit() else None,
                        "bytes": int(answered["length"]) if answered.get("length") else None,
                        "duration_ms": round(duration * 1000, 1),
                    }
                )
            )
        return result
