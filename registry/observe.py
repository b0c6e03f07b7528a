"""Every request, observed once at the WSGI edge (`ObserveApplication`, around the response cache
and Django): a request id (answered in `X-Request-Id`), the /-/metrics request counters
(registry.metrics) and one line per request: Apache's combined access line on the
`packhouse.access` logger, or with PACKHOUSE_LOG_FORMAT=json one JSON line on `packhouse.request`.
The application writes it, not the HTTP server, so every server Packhouse runs under (gunicorn for
`make run`, uWSGI behind nginx for `make serve`) logs the same line with its secrets redacted.

What only Django knows (the route's pattern, the format, who asked with which credential, which
project) is left in the WSGI environ as the request's facts by `FactsMiddleware` and the views
(`note_target`); an answer the response cache replays carries the facts it was remembered with.
Never a secret: a credential is named by its kind and row id.
"""

import json
import logging
import os
import time

from django.conf import settings

from accounts.redaction import redact
from registry import metrics

FACTS = "packhouse.facts"
TARGET = "packhouse.target"
REQUEST_ID = "packhouse.request_id"
# Behind nginx (PACKHOUSE_X_ACCEL_REDIRECT_PREFIX) the answer hands nginx a file to send instead of
# a body: the size of that file, the bytes the request's line counts.
SENT_BY_NGINX = "packhouse.sent_by_nginx"
NO_FACTS = {"format": "", "route": "unmatched"}
DRAIN_SECONDS = 10
DRAIN_BLOCK = 256 * 1024

request_logger = logging.getLogger("packhouse.request")
access_logger = logging.getLogger("packhouse.access")


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
        request_id = os.urandom(16).hex()  # 32 hex digits, as a uuid4's, without building one
        environ[REQUEST_ID] = request_id
        answered = {}

        def observed_start_response(status, headers, exc_info=None):
            answered["status"] = status.split(" ", 1)[0]
            answered["length"] = environ.get(SENT_BY_NGINX) or next(  # a replay's is its last header
                (v for k, v in reversed(headers) if k.lower() == "content-length"), None
            )
            headers = [*headers, ("X-Request-Id", request_id)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.application(environ, observed_start_response)
        if environ.get("CONTENT_LENGTH", "0") not in ("", "0"):
            drain_request_body(environ)
        duration = time.monotonic() - started
        facts = environ.get(FACTS, NO_FACTS)
        method = environ.get("REQUEST_METHOD", "")
        status = answered.get("status", "")
        metrics.labelled(metrics.REQUESTS, facts["format"], facts["route"], method, status).inc()
        metrics.labelled(metrics.DURATION, facts["format"]).observe(duration)
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
        elif access_logger.isEnabledFor(logging.INFO):
            write_access_line(access_line(environ, status, answered.get("length"), duration))
        return result


def drain_request_body(environ, seconds=DRAIN_SECONDS):
    """Reads what the application left of the request's body (a refused upload: 401, 404, 413),
    for at most `seconds`, before the answer goes out. A server that closes the connection with
    body bytes unread resets it, and nginx, still sending that body, then answers 502 instead of
    Packhouse's status (measured: 9-18 of 30 refused 3-50 MB uploads). Bounded in time so a
    client trickling a body cannot hold a thread; nothing left to read costs one empty read."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    deadline = time.monotonic() + seconds
    try:
        while stream.read(DRAIN_BLOCK) and time.monotonic() < deadline:
            pass
    except (OSError, ValueError):  # the client went away, or the server timed the read out
        pass


def write_access_line(line):
    """`line` through the `packhouse.access` logger. When that logger is as packhouse.settings
    configures it (one StreamHandler printing the message alone, nothing filtering it, nothing
    propagated), the line is written to the handler's stream as the handler would write it, under
    its lock, without building a LogRecord (an eighth of the instructions of a replayed answer)."""
    handler = _plain_handler()
    if handler is None:
        access_logger.info(line)
        return
    try:
        with handler.lock:
            handler.stream.write(line + handler.terminator)
            handler.stream.flush()
    except Exception:  # as logging.StreamHandler.emit reports a failed write
        handler.handleError(logging.makeLogRecord({"name": access_logger.name, "msg": line}))


_plain = (None, None, False)  # (a handler, its formatter, whether they print a message alone)


def _plain_handler():
    """packhouse.access's one handler when it writes each message alone to a stream, else None."""
    global _plain
    handlers = access_logger.handlers
    if len(handlers) != 1 or access_logger.propagate or access_logger.filters:
        return None
    handler = handlers[0]
    if type(handler) is not logging.StreamHandler or handler.filters or handler.level > logging.INFO:
        return None
    if _plain[:2] != (handler, handler.formatter):
        probe = logging.makeLogRecord({"name": access_logger.name, "msg": "probe", "levelno": logging.INFO})
        _plain = (handler, handler.formatter, handler.format(probe) == "probe")
    return handler if _plain[2] else None


_second = (None, "")  # (the second, its access-line timestamp): formatted once per second


def _timestamp():
    """The access line's `[01/Dec/2026:14:41:25 +0000]`, in local time as gunicorn writes it."""
    global _second
    now = int(time.time())
    if _second[0] != now:
        _second = (now, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now)))
    return _second[1]


def access_line(environ, status, length, duration):
    """Apache's combined format (gunicorn's default), plus the milliseconds until the answer was
    handed to the server (a body streams after), every secret in it redacted."""
    target = environ.get("REQUEST_URI") or environ.get("RAW_URI")  # as sent: uWSGI / gunicorn
    if target is None:
        query = environ.get("QUERY_STRING")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    return redact(
        f"{environ.get('REMOTE_ADDR') or '-'} - - {_timestamp()} "
        f'"{environ.get("REQUEST_METHOD", "")} {target} {environ.get("SERVER_PROTOCOL", "")}" {status or "-"} '
        f'{length or "-"} "{environ.get("HTTP_REFERER", "-")}" "{environ.get("HTTP_USER_AGENT", "-")}" '
        f"{duration * 1000:.1f}ms"
    )
