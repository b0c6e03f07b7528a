"""Stream a request body (or any byte stream) to a temp file, hashing it, under a size cap.

Memory stays constant whatever the size: bytes go through a 1 MiB buffer into a file under
PACKHOUSE_SPOOL_DIR while md5, sha1, sha256 and sha512 are updated. A multipart/form-data body
goes the same way, one spool per file part (SpoolUploadHandler).
"""

import errno
import hashlib
import hmac
import io
import os
import tempfile
from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from registry.errors import InsufficientStorage, Invalid, StorageUnavailable, TooLarge

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

    def hexdigest(self, algorithm):
        """A digest of the bytes: one computed while spooling, or any other hashlib algorithm
        (`blake2b_256`: BLAKE2b with a 32-byte digest) read from the file now."""
        if algorithm in DIGESTS:
            return getattr(self, algorithm)
        hasher = hashlib.blake2b(digest_size=32) if algorithm == "blake2b_256" else hashlib.new(algorithm)
        with self.open() as handle:
            while chunk := handle.read(CHUNK_SIZE):
                hasher.update(chunk)
        return hasher.hexdigest()

    def verify(self, algorithm, expected, what="checksum"):
        """Compare a client-sent digest with the one computed from the stored bytes."""
        actual = self.hexdigest(algorithm)
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


class _SpoolWriter:
    """An open spool: chunks are appended and hashed, more than `max_size` bytes (0: no cap)
    raises TooLarge. `finish()` hands back the Spool, `abort()` removes the file."""

    def __init__(self, max_size, prefix="upload-"):
        self.max_size = max_size
        self.size = 0
        self._hashers = {name: hashlib.new(name) for name in DIGESTS}
        try:
            os.makedirs(settings.SPOOL_DIR, exist_ok=True)
            self._handle = tempfile.NamedTemporaryFile(dir=settings.SPOOL_DIR, prefix=prefix, delete=False)  # noqa: SIM115
        except OSError as exc:
            raise _disk_error(exc) from exc

    def write(self, chunk):
        self.size += len(chunk)
        if self.max_size and self.size > self.max_size:
            raise TooLarge()
        for hasher in self._hashers.values():
            hasher.update(chunk)
        try:
            self._handle.write(chunk)
        except OSError as exc:
            self.abort()
            raise _disk_error(exc) from exc

    def finish(self):
        try:
            self._handle.close()  # flushes: a full disk may only show here
        except OSError as exc:
            self.abort()
            raise _disk_error(exc) from exc
        return Spool(self._handle.name, self.size, {name: h.hexdigest() for name, h in self._hashers.items()})

    def abort(self):
        """Remove the file, whatever state the disk is in."""
        try:
            self._handle.close()
        except OSError:
            pass  # what could not be flushed is thrown away with the file
        try:
            os.unlink(self._handle.name)
        except FileNotFoundError:
            pass


def spool_writer(max_size, prefix="upload-"):
    """An open spool to `write(chunk)` into, then `finish()` (the Spool) or `abort()`: for bytes
    that arrive as chunks from elsewhere (an upstream's response)."""
    return _SpoolWriter(max_size, prefix=prefix)


def _disk_error(exc):
    """A full disk (or quota) is 507, any other failure of the spool disk 503; never a 500."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage()
    return StorageUnavailable("503 Service Unavailable - the upload could not be spooled")


def spool_stream(stream, max_size, *, length=None):
    """Copy a readable stream into a Spool; more than `max_size` bytes raises TooLarge."""
    if length is not None and max_size and length > max_size:
        raise TooLarge()
    writer = _SpoolWriter(max_size)
    try:
        remaining = length
        while remaining is None or remaining > 0:
            chunk = stream.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            writer.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)
        if length is not None and writer.size != length:
            raise Invalid("400 Bad request - the request body ended before Content-Length bytes")
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


def spool_bytes(data, max_size=0):
    return spool_stream(io.BytesIO(data), max_size, length=len(data))


def request_body(request):
    """The raw body stream of a Django request and its length (None when chunked).

    Django reads nothing without Content-Length, so a chunked body (some clients send one) is read from
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


# --- multipart/form-data ---------------------------------------------------------------------


@dataclass
class SpooledPart:
    """One file part of a multipart body: its form field, the file name the client sent (as
    Django's parser sanitised it: no directories), and its spool."""

    field_name: str
    file_name: str
    spool: Spool


class SpoolUploadHandler(FileUploadHandler):
    """A Django upload handler that streams every file part of a multipart body into a Spool of
    its own (hashed, `max_size` bytes at most per part: TooLarge), never into memory and never
    into `request.FILES`: the parts are in `self.parts`, in body order.

    Whoever installs it owns the spools: `keep(part)` cleans up all the others (and any
    half-written one), `discard()` all of them."""

    def __init__(self, max_size, request=None):
        super().__init__(request)
        self.max_size = max_size
        self.parts = []
        self._writer = None

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        self._writer = _SpoolWriter(self.max_size, prefix="part-")

    def receive_data_chunk(self, raw_data, start):
        self._writer.write(raw_data)

    def file_complete(self, file_size):
        spool, self._writer = self._writer.finish(), None
        self.parts.append(SpooledPart(self.field_name, self.file_name or "", spool))
        return None  # nothing for request.FILES

    def upload_interrupted(self):
        """The body ended inside a file part: that part is dropped."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def keep(self, part=None):
        """Clean up every spool but `part`'s (all of them when None); returns `part`."""
        self.upload_interrupted()
        for other in self.parts:
            if other is not part:
                other.spool.cleanup()
        self.parts = [part] if part is not None else []
        return part

    def discard(self):
        self.keep(None)


def spool_multipart(body, content_type, max_size):
    """The file parts of a multipart/form-data body already spooled (`body`, a Spool; a client's
    chunked pushes), each in its own spool of at most `max_size` bytes: a SpoolUploadHandler
    whose `parts` the caller keeps or discards. A malformed body is Invalid (400)."""
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(body.size)}
    handler = SpoolUploadHandler(max_size)
    try:
        with body.open() as handle:
            MultiPartParser(meta, handle, [handler], "utf-8").parse()
    except (MultiPartParserError, ValueError) as exc:
        handler.discard()
        raise Invalid("400 Bad request - the multipart body is malformed") from exc
    except BaseException:
        handler.discard()
        raise
    return handler
