"""Stream a request body (or any byte stream) to a temp file, hashing it, under a size cap.

Memory stays constant whatever the size: bytes go through a 1 MiB buffer into a file under
PACKHOUSE_SPOOL_DIR while md5, sha1, sha256 and sha512 are updated.
"""

import hashlib
import hmac
import io
import os
import tempfile

from django.conf import settings

from registry.errors import Invalid, TooLarge

CHUNK_SIZE = 1024 * 1024
DIGESTS = ("md5", "sha1", "sha256", "sha512")


class Spool:
    """A finished spool: a temp file plus its size and hex digests. Use as a context manager."""

    def __init__(self, path, size, digests):
        self.path = path
        self.size = size
        self.md5 = digests["md5"]
        self.sha1 = digests["sha1"]
        self.sha256 = digests["sha256"]
        self.sha512 = digests["sha512"]

    def open(self):
        return open(self.path, "rb")  # noqa: SIM115 - caller closes

    def read(self):
        with self.open() as handle:
            return handle.read()

    def verify(self, algorithm, expected, what="checksum"):
        """Compare a client-sent digest with the one computed from the stored bytes."""
        actual = getattr(self, algorithm)
        if not expected or not hmac.compare_digest(actual, expected.strip().lower()):
            raise Invalid(f"400 Bad request - {what} mismatch: {algorithm} of the uploaded bytes is {actual}")

    def cleanup(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.cleanup()


def spool_stream(stream, max_size, *, length=None):
    """Copy a readable stream into a Spool; more than `max_size` bytes raises TooLarge."""
    if length is not None and max_size and length > max_size:
        raise TooLarge()
    os.makedirs(settings.SPOOL_DIR, exist_ok=True)
    hashers = {name: hashlib.new(name) for name in DIGESTS}
    size = 0
    handle = tempfile.NamedTemporaryFile(dir=settings.SPOOL_DIR, prefix="upload-", delete=False)  # noqa: SIM115
    try:
        with handle:
            remaining = length
            while remaining is None or remaining > 0:
                chunk = stream.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
                if not chunk:
                    break
                size += len(chunk)
                if max_size and size > max_size:
                    raise TooLarge()
                for hasher in hashers.values():
                    hasher.update(chunk)
                handle.write(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
        if length is not None and size != length:
            raise Invalid("400 Bad request - the request body ended before Content-Length bytes")
    except BaseException:
        os.unlink(handle.name)
        raise
    return Spool(handle.name, size, {name: h.hexdigest() for name, h in hashers.items()})


def spool_bytes(data, max_size=0):
    return spool_stream(io.BytesIO(data), max_size, length=len(data))


def request_body(request):
    """The raw body stream of a Django request and its length (None when chunked).

    Django reads nothing without Content-Length, so a chunked body (NuGet.exe) is read from
    the server's own terminated input stream (gunicorn sets `wsgi.input_terminated`).
    """
    django_request = getattr(request, "_request", request)
    meta = django_request.META
    raw_length = meta.get("CONTENT_LENGTH") or ""
    if raw_length.strip():
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise Invalid("400 Bad request - invalid Content-Length") from exc
        if length < 0:
            raise Invalid("400 Bad request - invalid Content-Length")
        return django_request, length
    if meta.get("wsgi.input_terminated"):
        return meta["wsgi.input"], None
    return django_request, None


def spool_request(request, max_size):
    stream, length = request_body(request)
    return spool_stream(stream, max_size, length=length)
