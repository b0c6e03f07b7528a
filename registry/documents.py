"""Client metadata documents (a package's version list, an index page, a registration document):
cached under the epochs of the packages they are built from, answered with ETag / 304.

A document's key holds the packages the caller may pull (their ids) and their names' epochs
(registry.epochs), read before the view looked at any row (registry.views.PackageAPIView puts
them in the request's RequestFreshness); the ids are read once per change of those epochs or of
the caller's identity epoch. Every write gives its package's name a new epoch, so a
changed package changes the key; nothing has to be invalidated by hand. Without epochs (a view
that declares no `reads`, or epochs that cannot be read) a document is built for each request.
The cache is an accelerator only: when it is down, documents are built.
"""

import gzip
import hashlib
import json
import logging
import threading

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.http import HttpResponse, HttpResponseNotModified

from registry import request_freshness
from registry.lru import BoundedLRU

logger = logging.getLogger(__name__)
TIMEOUT = 24 * 3600


def _cache_call(method, *args):
    try:
        return getattr(cache, method)(*args)
    except Exception as exc:  # Redis down: serve uncached
        logger.warning("cache %s failed: %s", method, exc.__class__.__name__)
        return None


def cached_document(request, packages, render, content_type, variant=""):
    """Respond with `render()` (str or bytes), cached per (URL base, path, variant, packages and
    their epochs).

    `packages` is a queryset of the registry.models.Package rows the document is built from
    (already limited to what the caller may pull); one query reads their ids.

    The answer is marked reusable (registry.request_freshness): when its view declares
    `package_epochs`, registry.response_cache may answer the same request again without running
    the view.
    """
    state = request_freshness.of(request.META)
    if state.package_stamps is None:
        return _uncached_document(request, render, content_type)
    signature = [_package_ids(state, packages), _text(state.package_stamps)]
    response = memoized_document(request, signature, render, content_type, variant)
    state.reusable = True
    return response


def _package_ids(state, packages):
    """The ids of `packages`, remembered per process under the request's identity and package
    epochs (registry.access_cache.RequestMemory), keyed by the query's own SQL. What the query
    reads is in those epochs: packages of the declared names (a package created, or any change
    to one, bumps its name's epochs) and the projects the caller may pull (any change to a
    project, group, membership, allowlist or token bumps the identity epoch; memberships that
    end at midnight are in the memory's date). So a document whose key is unchanged is answered
    without a query at all."""
    ids = packages.order_by("pk").values_list("pk", flat=True)
    if state.memory is None:
        return list(ids)
    try:
        sql, params = ids.query.sql_with_params()
    except EmptyResultSet:  # a queryset that can match nothing: `.none()`, or an empty subquery
        return []
    return state.memory.remember_under_packages(("document-ids", sql, repr(params)), lambda: list(ids))


def memoized_document(request, signature, render, content_type, variant=""):
    """Respond with `render()` (str or bytes), cached per (URL base, path, variant, signature):
    `signature` (JSON-serializable) must name everything the document is built from, so a
    change to any of it makes a new key. Gzipped when the client takes it, ETag / 304. Not
    marked reusable: the caller decides (cached_document does).

    The URL base is settings.EXTERNAL_URL when set (documents name the server by it, whatever
    the request's Host), else the request's own: the shared cache outlives a restart, and a
    document remembered under another external URL must not answer."""
    base = settings.EXTERNAL_URL or request.build_absolute_uri("/")
    material = json.dumps([base, request.path, variant, signature])
    key = "doc:" + hashlib.sha256(material.encode()).hexdigest()
    etag = f'"{key[4:36]}"'
    if _matches(request, etag):
        return _not_modified(etag)
    compressed = _local.get(key)
    if compressed is None:
        # One build per process: threads asking for the same document while it is being built
        # (every one of them, right after a publish) wait for it instead of building it too.
        with _BUILD_LOCKS[hash(key) % len(_BUILD_LOCKS)]:
            compressed = _local.get(key) or _cache_call("get", key)
            if compressed is None:
                body = render()
                compressed = gzip.compress(body.encode() if isinstance(body, str) else body, compresslevel=6, mtime=0)
                _cache_call("set", key, compressed, TIMEOUT)
            _local.put(key, compressed)
    return _respond(request, compressed, content_type, etag)


def _uncached_document(request, render, content_type):
    """Built for this request only; its ETag is its digest, so a 304 still saves the transfer."""
    body = render()
    body = body.encode() if isinstance(body, str) else body
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    if _matches(request, etag):
        return _not_modified(etag)
    return _respond(request, None, content_type, etag, body=body)


def _respond(request, compressed, content_type, etag, body=None):
    """The document, gzipped when the client takes it (from `compressed`, else from `body`)."""
    if _accepts_gzip(request):
        if compressed is None:
            compressed = gzip.compress(body, compresslevel=6, mtime=0)
        response = HttpResponse(compressed, content_type=content_type)
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(body if body is not None else gzip.decompress(compressed), content_type=content_type)
    response["Vary"] = "Accept, Accept-Encoding"
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def _text(stamps):
    return [stamp.decode() if isinstance(stamp, bytes) else stamp for stamp in stamps]


def _matches(request, etag):
    return etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]


def _not_modified(etag):
    response = HttpResponseNotModified()
    response["ETag"] = etag
    return response


def _accepts_gzip(request):
    return "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", "").lower()


# A small per-process copy of recent documents: keys embed package epochs, so an entry can
# never go stale; it only spares the round trip to Redis for large documents. Bounded in bytes
# (the document, its key and about 256 bytes of objects around them).
_LOCAL_MAX_BYTES = 16 * 1024 * 1024
_local = BoundedLRU(limit=lambda: _LOCAL_MAX_BYTES, cost=lambda key, value: len(value) + len(key) + 256)
_BUILD_LOCKS = [threading.Lock() for _ in range(64)]
