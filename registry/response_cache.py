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
cached upstream document due for revalidation). When the credential's last use is due to be
recorded (accounts.last_use: at most once per TOKEN_LAST_USED_INTERVAL), the replay records it
itself, one Redis call and no query (`last_use.note`, written to the row by a beat task), and
goes on replaying; when Redis refuses that, the request goes through Django, which records it.
When the credential is a token whose use from the caller's address this process has not noted
today (accounts.audit.token_used: one `token_used_from_new_ip` event per token, address and day),
the request goes through Django, which records it. Anything else falls through to Django. Only
200 answers to GET are remembered; errors and denials are always computed afresh. On
when the shared cache is Redis (PACKHOUSE_REDIS_URL).

Each remembered entry is also put in the shared cache (Redis, `reuse:<key>`, until its own
lifetime ends; bodies up to 1 MiB), so another worker of any node that has not built that answer
yet takes it from there instead of running Django (PACKHOUSE_RESPONSE_REUSE_SHARED, on by
default): a new worker, or pip's new connection landing on another worker, replays at once. The
shared copy is checked against the epochs like a local one, and one found out of date is deleted
there too. Only paths of the package endpoints (`/packages/`) are looked up.

Downloads from the local blob store are remembered the same way, without their bytes: the entry
holds the blob's file, its size and the headers (registry.request_freshness.DownloadFile, named by
registry.services.serve for a FileResponse, and by registry.virtual.views.allow_file_replay for a
virtual registry's cached released file, under that view's epochs; links to the object store are
never remembered). A replay opens the file, checks that it still has the blob's size
(else Django answers, with the error it gives today) and hands it to the server's
`wsgi.file_wrapper` (gunicorn: sendfile). Closing it, after the last byte or a broken connection,
counts the download as Django's answer does (registry.download_counts.record). Behind nginx with
PACKHOUSE_X_ACCEL_REDIRECT_PREFIX, Django's answer is the X-Accel-Redirect header and no body; its
replay is that same answer, sent after the same size check, and counted at once as Django's
is. Django's FileResponse answers Range and conditional
headers with the whole file (200): requests that carry any of them (`UNREPLAYED_DOWNLOAD_HEADERS`)
are neither replayed nor remembered, so whatever a view does with them stays its own answer.
"""

import hashlib
import io
import logging
import os
import time
from dataclasses import dataclass
from wsgiref.util import FileWrapper

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed

from accounts import audit, last_use
from accounts.authentication import CREDENTIAL_HEADERS
from accounts.principals import JOB_TOKEN
from accounts.throttling import address_of, package_request_limits_on
from registry import download_counts, epochs, metrics, observe, request_freshness
from registry.access_cache import identity_keys
from registry.lru import BoundedLRU
from registry.virtual import hit_counts

logger = logging.getLogger(__name__)

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


# Remembered entries are also kept in the shared cache (Redis) for the other workers of every node,
# under this prefix, up to this size of body (a larger document is rebuilt by each worker).
SHARED_PREFIX = "reuse:"
SHARED_MAX_BODY = 1024 * 1024
# Only paths with this in them are looked up there (the package and virtual registry endpoints,
# where every remembered answer comes from): a page or an API listing costs no round trip.
SHARED_PATH_MARK = "/packages/"

# Request headers Django's FileResponse answers with the whole file but a view might not ignore: a
# download asked with any of them is answered by Django, never replayed nor remembered.
UNREPLAYED_DOWNLOAD_HEADERS = (
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
# What a server without sendfile (no `wsgi.file_wrapper`, or TLS) reads per write.
FILE_BLOCK_SIZE = 64 * 1024


@dataclass
class Entry:
    keys: list
    values: list
    valid_until: float
    touch_due: float | None  # when the credential's last use is next to be recorded (unix time)
    body: bytes
    headers: list
    etag: str
    facts: dict = None  # registry.observe: route, format, who asked (for metrics and the log line)
    download: request_freshness.DownloadFile | None = None  # a download: this file instead of `body`
    token_digest: str | None = None  # a token whose use from a new address is audited (accounts.audit)
    credential: str | None = None  # the token whose use a replay records (accounts.last_use.credential_of)

    @property
    def size(self):
        """Memory the entry holds: its body and about 2 KiB of headers, keys, epochs and the
        objects around them (3.3 KB measured with tracemalloc for a 1.2 KB metadata document)."""
        return len(self.body) + 2048

    def current(self):
        """Whether nothing this answer depended on may have changed; the credential's last use is
        recorded when due (accounts.last_use.note), and when that fails, False: Django answers
        and records it."""
        now = time.time()
        if now >= self.valid_until or not epochs.unchanged(self.keys, self.values):
            return False
        if self.touch_due is not None and now >= self.touch_due:
            if self.credential is None or not last_use.note(self.credential, now):
                return False
            self.touch_due = now + settings.TOKEN_LAST_USED_INTERVAL
        return True

    def replay(self, environ):
        """(status, headers, body) to answer with, or None when anything this answer depended on
        may have changed (or the credential's last use could not be recorded)."""
        if not self.current():
            return None
        if self.etag and self.etag in [tag.strip() for tag in environ.get("HTTP_IF_NONE_MATCH", "").split(",")]:
            return "304 Not Modified", [("ETag", self.etag)], b""
        return "200 OK", self.headers, self.body


class CountedFile(io.FileIO):
    """A blob's file opened for one replayed download: closing it (the server does, once the last
    byte is sent or the connection broke, as Django closes its FileResponse) counts the download
    once, as registry.services.serve's answer does."""

    version_id = None
    cache_entry_id = None

    def close(self):
        try:
            super().close()
        finally:
            version_id, self.version_id = self.version_id, None
            entry_id, self.cache_entry_id = self.cache_entry_id, None
            count_download(version_id, entry_id)


def count_download(version_id, cache_entry_id):
    """Count a replayed download as Django counts its answer: the version's download, a virtual
    registry's cache hit (either may be None)."""
    try:
        if version_id is not None:
            download_counts.record(version_id)
        if cache_entry_id is not None:
            hit_counts.record(cache_entry_id)
    except Exception:
        logger.exception("could not count a replayed download")


def file_has_size(download):
    """Whether the download's file is on the disk with the blob's size (what nginx will send)."""
    try:
        return os.stat(download.path).st_size == download.size
    except OSError:
        return False


def open_download(download):
    """The download's file, opened and checked to have the blob's size; None when it cannot be
    sent as it (gone, unreadable, another size): Django then answers, with the error it gives."""
    try:
        handle = CountedFile(download.path)
    except OSError:
        return None
    try:
        size = os.fstat(handle.fileno()).st_size
    except OSError:
        size = None
    if size != download.size:
        handle.close()
        return None
    handle.version_id = download.version_id
    handle.cache_entry_id = download.cache_entry_id
    return handle


def new_store():
    """A per-process LRU of entries, bounded by the memory they hold (RESPONSE_REUSE_MAX_BYTES)."""
    return BoundedLRU(limit=lambda: settings.RESPONSE_REUSE_MAX_BYTES, cost=lambda key, entry: entry.size)


store = new_store()


def _forget_everything(**kwargs):
    store.clear()


setting_changed.connect(_forget_everything, dispatch_uid="response-cache-settings")


def _shared_key(key):
    return SHARED_PREFIX + key.hex()


def shared_get(key):
    """An entry another worker (of any node) remembered under `key`, now also remembered here;
    None when there is none or the shared cache cannot be read. It is checked against the
    epochs like any other before it is replayed."""
    if not settings.RESPONSE_REUSE_SHARED:
        return None
    try:
        entry = caches["default"].get(_shared_key(key))
    except Exception as exc:  # the shared cache is an accelerator: Django answers
        logger.warning("shared replay store unavailable: %s", exc.__class__.__name__)
        return None
    if not isinstance(entry, Entry):
        return None
    store.put(key, entry)
    return entry


def _shared_put(key, entry):
    if not settings.RESPONSE_REUSE_SHARED or len(entry.body) > SHARED_MAX_BODY:
        return
    seconds = int(entry.valid_until - time.time())
    if seconds < 1:
        return
    try:
        caches["default"].set(_shared_key(key), entry, timeout=seconds)
    except Exception as exc:
        logger.warning("shared replay store unavailable: %s", exc.__class__.__name__)


def forget(key):
    """An entry found out of date: forgotten here and in the shared cache."""
    store.discard(key)
    if settings.RESPONSE_REUSE_SHARED:
        try:
            caches["default"].delete(_shared_key(key))
        except Exception as exc:
            logger.warning("shared replay store unavailable: %s", exc.__class__.__name__)


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
    return None if row is None else last_use.next_due(row)


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
        if entry is None and SHARED_PATH_MARK in environ.get("PATH_INFO", ""):
            entry = shared_get(key)
        if (
            entry is not None
            and entry.token_digest
            and not audit.token_use_noted(entry.token_digest, address_of(environ))
        ):
            entry = None  # a token from an address not noted today: Django answers and notes it
        if entry is not None and entry.download is not None:
            if any(name in environ for name in UNREPLAYED_DOWNLOAD_HEADERS):
                return self.application(environ, start_response)  # Django's answer, left as it is
            answer = self._send_file(entry, environ, start_response)
            if answer is not None:
                return answer
            forget(key)
        elif entry is not None:
            answer = entry.replay(environ)
            if answer is not None:
                status, headers, body = answer
                environ[observe.FACTS] = entry.facts or observe.NO_FACTS
                metrics.labelled(metrics.REUSE, "replayed").inc()
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
            forget(key)
        environ[request_freshness.ENVIRON_KEY] = request_freshness.RequestFreshness(reuse_key=key)
        return self.application(environ, start_response)

    @staticmethod
    def _send_file(entry, environ, start_response):
        """A remembered download answered from its file (None: Django must answer)."""
        if not entry.current():
            return None
        download = entry.download
        behind_nginx = download.accel_redirect is not None  # the X-Accel-Redirect header is remembered
        handle = None if behind_nginx else open_download(download)
        if not (file_has_size(download) if behind_nginx else handle is not None):
            return None  # gone, unreadable or another size: Django answers
        environ[observe.FACTS] = entry.facts or observe.NO_FACTS
        metrics.labelled(metrics.REUSE, "replayed").inc()
        metrics.labelled(metrics.BYTES, "downloaded", download.format).inc(download.size)
        if behind_nginx:  # nginx sends the file; Django's answer is counted as it leaves for nginx
            environ[observe.SENT_BY_NGINX] = download.size
            start_response("200 OK", [*entry.headers, ("Content-Length", "0")])
            count_download(download.version_id, download.cache_entry_id)
            return [b""]
        start_response("200 OK", [*entry.headers, ("Content-Length", str(download.size))])
        wrapper = environ.get("wsgi.file_wrapper") or FileWrapper
        return wrapper(handle, FILE_BLOCK_SIZE)


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
        if remembered is None or response.status_code != 200 or response.cookies:
            return
        download = state.download
        if download is not None:
            if not _remembers_download(request, download, response):
                return
            body = b""
        elif not state.reusable or response.streaming:
            return
        else:
            body = response.content
        principal = getattr(request, "auth", None)
        valid_until = _valid_until(principal)
        if state.valid_until is not None:
            valid_until = min(valid_until, state.valid_until)
        if valid_until <= time.time():
            return
        entry = Entry(
            keys=remembered[0],
            values=remembered[1],
            valid_until=valid_until,
            touch_due=_touch_due(principal),
            body=body,
            headers=[(name, value) for name, value in response.items() if name.lower() != "content-length"],
            etag=response.get("ETag", ""),
            facts=observe.facts_of(request),
            download=download,
            token_digest=audit.audited_token_digest(principal),
            credential=last_use.credential_of(_credential_row(principal)),
        )
        store.put(state.reuse_key, entry)
        if getattr(principal, "kind", None) != JOB_TOKEN:
            # A job's token dies with its job, and a job asks for each URL once (an install asks
            # for each document and file once): a shared copy would be written for every answer
            # and read for almost none (a Redis write of the pickled entry, a tenth of the CPU of
            # such an answer).
            _shared_put(state.reuse_key, entry)
        metrics.REUSE.labels("built").inc()


def _remembers_download(request, download, response):
    """Whether a download answer may be sent again from its file: the whole file, as a
    FileResponse sends it, to a request without Range or conditional headers."""
    if any(name in request.META for name in UNREPLAYED_DOWNLOAD_HEADERS):
        return False
    if download.accel_redirect is not None:  # nginx sends the file: the same header, no body
        return response.get("X-Accel-Redirect") == download.accel_redirect and not response.content
    if getattr(response, "file_to_stream", None) is None or response.has_header("X-Accel-Redirect"):
        return False
    return response.get("Content-Length") == str(download.size)
