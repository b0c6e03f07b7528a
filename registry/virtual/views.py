"""The client endpoints of virtual registries, `/api/v4/virtual_registries/packages/<format>/<id>/…`
(spec §2): the base view formats subclass (setting `package_format`), and the answer for one path.

- Anonymous callers are never served: 401 with `WWW-Authenticate: Basic realm="GitLab Virtual
  Registry"` (sbt matches the realm literally). An unknown credential 401; a non-member, a
  missing registry or a registry of another format 404; all through registry.policy.
- GET and HEAD only; anything else 405 with `Allow: GET, HEAD`.
- Paths: percent-decoded once (by Django), refused with `.`/`..`/empty segments, a backslash, a
  NUL or more than 5000 characters (400) before the format parses them.
- Files are streamed from the blob store, never redirected; headers say where they came from
  (`X-Packhouse-Cache`, `X-Packhouse-Upstream`, `Age` and `X-Packhouse-Stale-Reason` when stale).
- Metadata documents are answered again before Django (registry.response_cache) when the view
  names its document from the URL (`document_path`) and the answer was a HIT decided by no
  negative cache entry: under the caller's identity and credential epochs, the registry's epoch
  (registry.virtual.changes) and the epoch of the package name (local upstreams), and never past
  the served cache entries' metadata validity.
- An answer Django builds (not replayed) starts, as a project endpoint's does, from what the
  process remembers under the epochs (registry.access_cache.RequestMemory, read before anything is
  looked up): the caller's Principal, the registry row and the caller's access to it under the
  identity epochs; the registry's upstreams, their rules, the name's claims and a local upstream's
  projects and files under the registry's and the name's epochs too (`resolve`,
  registry.virtual.resolver). Warm, a local upstream's answer runs no query, a remote one only
  those of its cache entries (tests/performance/test_virtual_queries.py).
- Released files (FileKind.IMMUTABLE: the archives clients install) are sent again from
  their file of the local blob store before Django, under the same epochs, when the view names
  the file from the URL (`file_raw_path`) and the answer was such a HIT (`allow_file_replay`):
  never a MISS, STALE or REVALIDATED answer, HEAD, a checksum text, a Range or conditional
  request, or a blob of the object store. A cached remote file's hits are counted on its cache
  entry at most once a minute (spec §3.4): its replay ends when the count is due, so the next
  request runs Django and counts it (the counts are those of an instance without replays).
"""

import hashlib

from django.conf import settings
from django.http import FileResponse, HttpResponse
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts import roles
from accounts.authentication import principal_of
from accounts.throttling import PackageRequestThrottle
from registry import documents, epochs, observe, policy, request_freshness
from registry.access_cache import RequestMemory
from registry.errors import Invalid, NotFound, RegistryError, TooManyRequests, Unauthenticated
from registry.formats import FileKind
from registry.storage import BlobStore
from registry.views import AnyAccept, RememberingTokenAuthentication
from registry.virtual import resolver
from registry.virtual.models import VirtualRegistry

CHALLENGE = 'Basic realm="GitLab Virtual Registry"'
MAX_PATH = 5000


def check_path(raw):
    if not raw or len(raw) > MAX_PATH or "\\" in raw or "\x00" in raw:
        raise Invalid("400 Bad request - path is invalid")
    if any(segment in ("", ".", "..") for segment in raw.split("/")):
        raise Invalid("400 Bad request - path is invalid")
    return raw


def cache_control(kind):
    if kind == FileKind.IMMUTABLE:
        return "private, max-age=31536000, immutable"
    return "private, max-age=0, must-revalidate"


def provenance_headers(served):
    headers = {
        "X-Packhouse-Cache": served.cache,
        "X-Packhouse-Upstream": served.upstream,
        "Cache-Control": cache_control(served.kind),
    }
    if served.stale_reason:
        headers["X-Packhouse-Stale-Reason"] = served.stale_reason
        headers["Age"] = str(max(served.age or 0, 0))
    if served.last_modified:
        headers["Last-Modified"] = served.last_modified
    return headers


def memoized_answer(request, registry, served, render, content_type, variant=""):
    """The document `render()` builds from `served` (a metadata document: filtered, URLs
    rewritten, encoded), built once per (registry, path, variant, the served bytes' identity and
    the serving upstream's rules) and then answered from registry.documents' cache: gzipped when
    the client takes it, 304 to a matching If-None-Match. Whatever changes the answer changes one
    of those: a local publish the local document's epoch, a revalidated upstream document its blob,
    a reorder or a claim which upstream serves, a rule change the rules."""
    rules = [[rule.pk, rule.rule_type, rule.pattern_type, rule.target, rule.pattern] for rule in served.rules]
    signature = ["virtual", registry.pk, served.upstream, served.identity, rules]
    response = documents.memoized_document(request, signature, render, content_type, variant)
    for name, value in provenance_headers(served).items():
        response[name] = value
    allow_replay(request, served)
    return response


def allow_replay(request, *served):
    """Mark the answer built from `served` (every Served the view read) as one
    registry.response_cache may replay while the view's epochs (VirtualRegistryView.package_epochs)
    are unchanged, and never once a cached upstream document it was built from is due for
    revalidation: when every one of them was a HIT that no negative cache entry decided."""
    if not served or not all(found.cache == "HIT" and found.replayable for found in served):
        return
    state = request_freshness.of(request.META)
    state.reusable = True
    for found in served:
        if found.fresh_until is not None:
            state.replay_until(found.fresh_until.timestamp())


def respond(request, served, path):
    """The response for a resolved path: a checksum text, or the file streamed (a document built
    here, local or merged, from memory: its checksums are those of exactly these bytes)."""
    blob = served.blob
    headers = provenance_headers(served)
    if blob is None:
        return _document_response(request, served, path, headers)
    if path.checksum:
        response = HttpResponse(getattr(blob, path.checksum), content_type="text/plain", headers=headers)
        if request.method == "HEAD":
            response.content = b""
        return response
    headers.update({"X-Checksum-SHA1": blob.sha1, "X-Checksum-MD5": blob.md5, "X-Checksum-SHA256": blob.sha256})
    store = BlobStore()
    response = store.serve(
        blob, path.file_name, request, content_type=served.content_type, allow_redirect=False, headers=headers
    )
    allow_file_replay(request, served, store, response)
    return response


def allow_file_replay(request, served, store, response):
    """Name the file of a cached released file's answer to registry.response_cache, which then
    sends that file again without Django while the view's epochs (VirtualRegistryView.package_epochs:
    the caller's, the registry's, the package name's) are unchanged: a GET answered HIT from the
    local disk (a FileResponse, or X-Accel-Redirect behind nginx; not the object store) of an immutable file
    that no negative cache entry decided. Never past the metadata validity of the document that
    was found to still list it. Each replay notes its hit on the cache entry
    (registry.virtual.hit_counts: counted at most once a minute per entry, as Django counts it)."""
    accel_redirect = response.get("X-Accel-Redirect")
    if request.method != "GET" or not settings.VIRTUAL_FILE_REPLAY:
        return
    if not (isinstance(response, FileResponse) or accel_redirect):
        return
    if served.cache != "HIT" or not served.replayable or served.kind != FileKind.IMMUTABLE:
        return
    state = request_freshness.of(request.META)
    blob = served.blob
    state.download = request_freshness.DownloadFile(
        path=store.storage.path(blob.key),
        size=blob.size,
        version_id=None,
        format=observe.format_of(request),
        cache_entry_id=served.entry_id,
        accel_redirect=accel_redirect,
    )
    if served.fresh_until is not None:
        state.replay_until(served.fresh_until.timestamp())


def _document_response(request, served, path, headers):
    data = served.content
    if path.checksum:
        digest = hashlib.new(path.checksum, data).hexdigest()
        response = HttpResponse(digest, content_type="text/plain", headers=headers)
    else:
        for algorithm in ("sha1", "md5", "sha256"):
            headers[f"X-Checksum-{algorithm.upper()}"] = hashlib.new(algorithm, data).hexdigest()
        headers["ETag"] = f'"{headers["X-Checksum-SHA256"]}"'
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return HttpResponse(status=304, headers=headers)
        response = HttpResponse(data, content_type=served.content_type, headers=headers)
    if request.method == "HEAD":
        response["Content-Length"] = str(len(response.content))
        response.content = b""
    return response


class VirtualRegistryView(APIView):
    package_format = None  # a registry.formats.PackageFormat with `virtual` support
    authentication_classes = [RememberingTokenAuthentication]
    permission_classes = []
    throttle_classes = [PackageRequestThrottle]
    content_negotiation_class = AnyAccept
    http_method_names = ["get", "head"]

    @classmethod
    def document_path(cls, url_kwargs):
        """The VirtualPath of the metadata document this view answers with, from the URL alone;
        None: no document of this view is replayed (files: `file_raw_path`; search, documents of many
        names: never)."""
        return None

    @classmethod
    def file_raw_path(cls, url_kwargs):
        """The path (as `serve_path` takes it) of the file this view sends, from the URL alone;
        None: the view sends no file of the blob store."""
        return None

    @classmethod
    def file_path(cls, url_kwargs):
        """The VirtualPath of the released file this view answers with, from the URL alone (its
        answer may be replayed: `respond`); None for anything else (checksums, mutable files)."""
        raw = cls.file_raw_path(url_kwargs)
        if raw is None:
            return None
        path = cls.package_format.virtual.parse(check_path(raw))
        return path if path.base is None and path.kind == FileKind.IMMUTABLE else None

    @classmethod
    def package_epochs(cls, url_kwargs):
        """The epochs a replayed answer keys on (registry.response_cache), besides the caller's:
        the registry's (registry.virtual.changes) and the package name's (local upstreams)."""
        try:
            path = cls.document_path(url_kwargs) or cls.file_path(url_kwargs)
        except RegistryError:
            return None
        if path is None or "registry_id" not in url_kwargs:
            return None
        return [
            epochs.virtual_registry(url_kwargs["registry_id"]),
            epochs.package(cls.package_format.name, path.name),
        ]

    # What this request may take from the process's memory (registry.access_cache.RequestMemory,
    # None: nothing), and the package name whose epoch it holds (`package_epochs`).
    memory = None
    remembered_name = None

    def initial(self, request, *args, **kwargs):
        # Epochs first, before anything is looked up, as registry.views.PackageAPIView does: the
        # caller, the registry and its upstreams are then remembered under them.
        package_keys = None
        if request.method in ("GET", "HEAD"):
            package_keys = self.package_epochs(kwargs)
            if package_keys is not None:
                self.remembered_name = (self.document_path(kwargs) or self.file_path(kwargs)).name
        state = request_freshness.of(request.META)
        self.memory = state.memory = RequestMemory.for_request(request, package_keys, state.epochs)
        memory = self.memory or policy.NO_MEMORY
        super().initial(request, *args, **kwargs)
        self.principal = principal_of(request)
        if request.method.lower() not in self.http_method_names:
            raise exceptions.MethodNotAllowed(request.method)
        if self.principal.is_anonymous:
            raise Unauthenticated()
        self.registry = self.remember(("virtual-registry", kwargs["registry_id"]), self._load_registry)
        if self.registry is None:
            raise NotFound("404 Not Found")
        policy.authorize_virtual_registry(self.principal, self.registry.group, roles.READ_VIRTUAL_REGISTRY, memory)

    def _load_registry(self):
        return (
            VirtualRegistry.objects.select_related("group")
            .filter(pk=self.kwargs["registry_id"], format=self.package_format.name)
            .first()
        )

    def remember(self, key, compute):
        """`compute()`, remembered under the caller's identity and the epochs `package_epochs`
        names (the registry's, the package name's); computed every time without them."""
        if self.memory is None:
            return compute()
        return self.memory.remember_under_packages((self.package_format.name, *key), compute)

    def resolve(self, path):
        """registry.virtual.resolver.resolve of `path` in this view's registry, with what the
        resolver may remember when `path` names the package whose epoch this request read."""
        memory = self.memory if self.memory is not None and path.name == self.remembered_name else None
        return resolver.resolve(self.registry, self.principal, self.package_format, path, memory=memory)

    def serve_path(self, request, raw_path):
        support = self.package_format.virtual
        path = support.parse(check_path(raw_path))
        served = self.resolve(path.base or path)
        response = respond(request, served, path)
        if (path.base or path).kind == FileKind.METADATA and (served.blob is None or path.checksum):
            # A document built here (local, merged) or a checksum text: bytes of this response. A
            # stored upstream document is served by the blob store (streamed, or handed to the
            # front server), never replayed.
            allow_replay(request, served)
        return response

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.Throttled):
            response = self.package_format.error_response(TooManyRequests(str(exc.detail)), self.request)
            response["Retry-After"] = str(int(exc.wait or 1))
            return response
        if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            exc = Unauthenticated(str(exc.detail))
        elif isinstance(exc, exceptions.MethodNotAllowed):
            exc = RegistryError(f"405 Method {self.request.method} Not Allowed")
            exc.status = 405
        if isinstance(exc, RegistryError):
            response = self.package_format.error_response(exc, self.request)
            if exc.status == 401:
                response["WWW-Authenticate"] = CHALLENGE
            if exc.status == 405:
                response["Allow"] = ", ".join(method.upper() for method in self.http_method_names)
            if getattr(exc, "retry_after", None):
                response["Retry-After"] = str(exc.retry_after)
            return response
        return super().handle_exception(exc)
