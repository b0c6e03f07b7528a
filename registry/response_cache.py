"""Answering a metadata GET again without running Django at all.

The first request for a client's metadata document runs the whole pipeline: authentication, the
policy, the view, registry.documents. When the view marks its answer reusable
(registry.request_freshness), the middleware here remembers it in the process, together with every
epoch (registry.epochs) the answer depended on:

- the instance-wide identity epoch and the presented credential's epoch;
- the epochs of the packages the document is built from, which the view class names from the
  URL alone (`package_epochs`).

All are read in process_view, before the view authenticates or reads a row, so a change committed
while the view runs is never remembered as current.

`ReuseApplication` wraps the WSGI application (packhouse.wsgi): the same request (same credential,
path, query, host, Accept and gzip-ness) is answered from memory once all those epochs are found
unchanged (registry.epochs: no round trip while the process's epoch mirror knows them), and never
later than `RESPONSE_REUSE_SECONDS`, the credential's expiry, the next midnight (when
memberships expire) or the limit the view set (RequestFreshness.valid_until: a virtual registry's
cached upstream document due for revalidation). When the credential's last-use time is due for
an update, the request goes through Django, which records it. Anything else falls through to
Django. Only 200 answers to GET are remembered; errors and denials are always computed afresh. On
when the shared cache is Redis (PACKHOUSE_REDIS_URL).
"""

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed

from accounts.authentication import CREDENTIAL_HEADERS
from accounts.throttling import package_request_limits_on
from registry import epochs, metrics, observe, request_freshness
from registry.access_cache import identity_keys
from registry.lru import BoundedLRU

# Request headers that can change a document's bytes (besides the credential).
KEY_HEADERS = (
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.url_scheme",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_ACCEPT",
)


@dataclass
class Entry:
    keys: list
    values: list
    valid_until: float
    touch_due: float | None  # when the credential's last use should be recorded again
    body: bytes
    headers: list
    etag: str
    facts: dict = None  # registry.observe: route, format, who asked (for metrics and the log line)

    @property
    def size(self):
        """Memory the entry holds: its body and about 2 KiB of headers, keys, epochs and the
        objects around them (3.3 KB measured with tracemalloc for a 1.2 KB metadata document)."""
        return len(self.body) + 2048

    def replay(self, environ):
        """(status, headers, body) to answer with, or None when anything this answer depended on
        may have changed (or the credential's last use is due to be recorded)."""
        now = time.time()
        if now >= self.valid_until or (self.touch_due is not None and now >= self.touch_due):
            return None
        if not epochs.unchanged(self.keys, self.values):
            return None
        if self.etag and self.etag in [tag.strip() for tag in environ.get("HTTP_IF_NONE_MATCH", "").split(",")]:
            return "304 Not Modified", [("ETag", self.etag)], b""
        return "200 OK", self.headers, self.body


def new_store():
    """A per-process LRU of entries, bounded by the memory they hold (RESPONSE_REUSE_MAX_BYTES)."""
    return BoundedLRU(limit=lambda: settings.RESPONSE_REUSE_MAX_BYTES, cost=lambda key, entry: entry.size)


store = new_store()


def _forget_everything(**kwargs):
    store.clear()


setting_changed.connect(_forget_everything, dispatch_uid="response-cache-settings")


def request_key(environ):
    """Everything in a WSGI environ that can change a document's bytes, hashed."""
    material = [environ.get(name, "") for name in KEY_HEADERS]
    material.append("gzip" in environ.get("HTTP_ACCEPT_ENCODING", "").lower())
    material.extend(environ.get(name, "") for name in CREDENTIAL_HEADERS)
    return hashlib.sha256(repr(material).encode("utf-8", "surrogatepass")).digest()


def _credential_row(principal):
    return principal and (principal.access_token or principal.deploy_token)


def _valid_until(principal):
    now = time.time()
    until = min(
        now + settings.RESPONSE_REUSE_SECONDS,
        now + settings.AUTHORIZATION_MAX_AGE,
        now - now % 86400 + 86400,  # memberships end at midnight
    )
    expires_at = getattr(_credential_row(principal), "expires_at", None)
    if expires_at is not None:
        until = min(until, expires_at.timestamp())
    return until


def _touch_due(principal):
    row = _credential_row(principal)
    if row is None:
        return None
    if row.last_used_at is None:
        return 0.0
    return row.last_used_at.timestamp() + settings.TOKEN_LAST_USED_INTERVAL


class ReuseApplication:
    """WSGI wrapper: answer remembered documents before Django; mark the rest with their key."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET" or not settings.EPOCH_CACHES:
            return self.application(environ, start_response)
        if package_request_limits_on():  # every request must be counted: Django answers them all
            return self.application(environ, start_response)
        key = request_key(environ)
        entry = store.get(key)
        if entry is not None:
            answer = entry.replay(environ)
            if answer is not None:
                status, headers, body = answer
                environ[observe.FACTS] = entry.facts or observe.NO_FACTS
                metrics.REUSE.labels("replayed").inc()
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
            store.discard(key)
        environ[request_freshness.ENVIRON_KEY] = request_freshness.RequestFreshness(reuse_key=key)
        return self.application(environ, start_response)


class ResponseReuseMiddleware:
    """Reads the epochs before a document view runs and remembers its answer afterwards."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        state = request.META.get(request_freshness.ENVIRON_KEY)
        if state is not None and state.reuse_key is not None:
            self._remember(request, state, response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        state = request.META.get(request_freshness.ENVIRON_KEY)
        if state is None or state.reuse_key is None:
            return None
        package_epochs = getattr(getattr(view_func, "cls", None), "package_epochs", None)
        if package_epochs is None:
            return None
        documents = package_epochs(view_kwargs)
        identity = identity_keys(request.META)
        if documents is None or identity is None:
            return None
        keys = identity + list(documents)
        values = epochs.current(keys)
        if values is not None:
            state.epochs = (keys, values)
        return None

    @staticmethod
    def _remember(request, state, response):
        remembered = state.epochs
        if remembered is None or not state.reusable or response.status_code != 200:
            return
        if response.streaming or response.cookies:
            return
        principal = getattr(request, "auth", None)
        valid_until = _valid_until(principal)
        if state.valid_until is not None:
            valid_until = min(valid_until, state.valid_until)
        if valid_until <= time.time():
            return
        store.put(
            state.reuse_key,
            Entry(
                keys=remembered[0],
                values=remembered[1],
                valid_until=valid_until,
                touch_due=_touch_due(principal),
                body=response.content,
                headers=[(name, value) for name, value in response.items() if name.lower() != "content-length"],
                etag=response.get("ETag", ""),
                facts=observe.facts_of(request),
            ),
        )
        metrics.REUSE.labels("built").inc()
