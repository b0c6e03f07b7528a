"""What one request carries between the layers that remember answers, in one typed object.

The WSGI layer (registry.response_cache.ReuseApplication) starts it with the request's reuse key;
the response-cache middleware adds the epochs it read before the view ran; the package view
(registry.views.PackageAPIView) adds the request's RequestMemory (registry.access_cache) and the
epochs of the packages its GET reads, which registry.documents keys a document on; a document
marks the answer reusable, a download from the local disk names the file it sends or hands to nginx
(`DownloadFile`, registry.services.serve; registry.virtual.views.allow_file_replay); the middleware then remembers it.
It lives in the WSGI environ (request.META), so Django's and DRF's request objects share it.
"""

from dataclasses import dataclass

ENVIRON_KEY = "packhouse.freshness"


@dataclass(frozen=True)
class DownloadFile:
    """A download answered with a file of the local blob store (a FileResponse): what replaying it
    takes, instead of a body (registry.response_cache)."""

    path: str  # the blob's file
    size: int  # the blob's size: a file of any other size is never sent as it
    version_id: int | None  # the version whose download count each replay adds to (None: not counted)
    format: str  # for the bytes-downloaded metric
    # A virtual registry's cached file: the cache entry each replay notes its hit on
    # (registry.virtual.hit_counts); None for a package file.
    cache_entry_id: int | None = None
    # Behind nginx (PACKHOUSE_X_ACCEL_REDIRECT_PREFIX): the internal URI the answer hands the file
    # to nginx at; a replay sends that header and no body. None: the server sends the file.
    accel_redirect: str | None = None


@dataclass
class RequestFreshness:
    reuse_key: bytes | None = None  # set when the answer may be remembered (a GET, epoch caches on)
    epochs: tuple | None = None  # (keys, values) read before the view, when it declares its packages
    memory: object | None = None  # the request's registry.access_cache.RequestMemory, if any
    package_stamps: tuple | None = None  # epochs of the packages the view reads, read before it ran
    reusable: bool = False  # the answer is a document that may be replayed
    download: DownloadFile | None = None  # the answer sends this file of the local blob store
    # A time (epoch seconds) after which the answer must not be replayed even with every epoch
    # unchanged (a cached upstream document due for revalidation then); None: no such limit.
    valid_until: float | None = None

    def replay_until(self, moment):
        """Never replay the answer after `moment` (epoch seconds); the earliest limit wins."""
        self.valid_until = moment if self.valid_until is None else min(self.valid_until, moment)


def of(meta):
    """The request's RequestFreshness (created empty on first use)."""
    state = meta.get(ENVIRON_KEY)
    if state is None:
        state = meta[ENVIRON_KEY] = RequestFreshness()
    return state
