"""BlobStore: content-addressed put / open / serve / delete over a Django storage (disk or S3).

Objects are named `blobs/<aa>/<bb>/<sha256>`. A per-digest lock (a PostgreSQL advisory lock
held to the end of the transaction) orders "upload object + insert row" against "row gone,
delete object", so a rollback never deletes an object another transaction just committed.

On S3 (django-storages' S3Storage gives the client and the bucket):
- uploads go from the spool file with multipart upload (`UPLOAD_CONFIG`): each part is read from
  disk as it is sent, so a worker's memory does not grow with the file (an interrupted upload
  leaves parts, never an object; the orphan sweep aborts what is left of it);
- a download is checked against the store first (the object is there, with the blob's size): a
  missing object or an unreachable store is 503 before any byte or link is given; then the
  client gets a presigned link (302) or, where its format streams, the bytes through the node
  read in 1 MiB pieces (`stream`).
"""

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import threading
from typing import NamedTuple

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection, transaction
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from registry import observe
from registry.errors import InsufficientStorage, StorageUnavailable
from registry.models import Blob, blob_key

logger = logging.getLogger(__name__)


# Boto3Error: s3transfer's S3UploadFailedError wraps what stopped a multipart upload.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError, Boto3Error)
MiB = 1024 * 1024
# Parts of 16 MiB (a 5 TiB object fits in S3's 10,000 parts only past 500 MiB parts, far past
# any format's limit), four in flight: each is read from the spool file while it is sent.
UPLOAD_CONFIG = TransferConfig(
    multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4, use_threads=True
)
READ_CHUNK = MiB


@contextlib.contextmanager
def storage_guard(what):
    """Turn any storage failure into a 503 (never a 404)."""
    try:
        yield
    except StorageUnavailable:
        raise
    except STORAGE_ERRORS as exc:
        logger.error("storage failure while %s: %s", what, exc.__class__.__name__)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage() from exc
        raise StorageUnavailable() from exc


def lock_digest(sha256):
    """Serialise work on one digest until the current transaction ends (call inside atomic).

    PostgreSQL: a transaction-scoped advisory lock. SQLite (embedded default) runs with
    BEGIN IMMEDIATE, so write transactions are already serialised and nothing more is needed.
    """
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(b"blob:" + sha256.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


BLOBS_PREFIX = "blobs/"


class StoredObject(NamedTuple):
    """An object under blobs/ as the store lists it (`modified`: a POSIX timestamp)."""

    key: str
    size: int
    modified: float

    @property
    def name(self):
        return self.key.rsplit("/", 1)[-1]


class BlobStore:
    def __init__(self, storage=None):
        self.storage = storage or storages["packages"]

    @property
    def is_local(self):
        return isinstance(self.storage, FileSystemStorage)

    def ingest(self, spool, written):
        """The Blob for a spool's bytes: row reused when it exists, object uploaded when new.

        Must run inside the caller's transaction. New object keys are appended to `written`
        so that the caller can delete them if the transaction rolls back.
        """
        lock_digest(spool.sha256)
        # The digest's lock (PostgreSQL; SQLite's write transactions are serial) keeps any other
        # transaction from inserting this row meanwhile: no savepoint around the insert is needed.
        blob = Blob.objects.filter(sha256=spool.sha256).first()
        created = blob is None
        if created:
            blob = Blob.objects.create(
                sha256=spool.sha256, sha1=spool.sha1, md5=spool.md5, sha512=spool.sha512, size=spool.size
            )
        key = blob.key
        with storage_guard("storing a blob"):
            if created or not self.storage.exists(key):
                self._put(key, spool)
                written.append(spool.sha256)
        return blob

    def _put(self, key, spool):
        if self.is_local:
            path = self.storage.path(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.{os.getpid()}.{threading.get_ident()}.part"
            try:
                try:  # same filesystem: a hard link costs nothing whatever the size
                    os.link(spool.path, partial)
                except OSError:
                    with open(spool.path, "rb") as source, open(partial, "wb") as target:
                        shutil.copyfileobj(source, target, 1024 * 1024)
                os.chmod(partial, 0o640)
                os.replace(partial, path)
            except OSError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)  # a full disk leaves no partial object behind
                raise
            return
        self.storage.bucket.Object(key).upload_file(
            str(spool.path), ExtraArgs={"ContentType": "application/octet-stream"}, Config=UPLOAD_CONFIG
        )

    @property
    def _client(self):
        return self.storage.bucket.meta.client

    def check(self, blob):
        """503 unless the blob's object is in the store with the blob's size (one HEAD on S3)."""
        with storage_guard("checking a blob"):
            try:
                if self.is_local:
                    size = os.path.getsize(self.storage.path(blob.key))
                else:
                    size = self._client.head_object(Bucket=self.storage.bucket_name, Key=blob.key)["ContentLength"]
            except FileNotFoundError:
                size = None
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
                size = None
        if size != blob.size:
            logger.error(
                "object of blob %s is %s",
                blob.sha256[:12],
                "missing" if size is None else f"{size} bytes, not {blob.size}",
            )
            raise StorageUnavailable()

    def stream(self, blob):
        """The object's bytes, 1 MiB at a time (S3: one GET whose body is read as it is sent)."""
        with storage_guard("reading a blob"):
            try:
                body = self._client.get_object(Bucket=self.storage.bucket_name, Key=blob.key)["Body"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    logger.error("object of blob %s is missing", blob.sha256[:12])
                    raise StorageUnavailable() from exc
                raise
        return _S3Body(body)

    def discard_unreferenced(self, sha256s):
        """After a rollback: delete objects whose digest has no Blob row (under the digest lock)."""
        for sha256 in sha256s:
            try:
                with transaction.atomic():
                    lock_digest(sha256)
                    if not Blob.objects.filter(sha256=sha256).exists():
                        self.storage.delete(blob_key(sha256))
            except Exception:  # the orphan sweep is the safety net
                logger.exception("could not discard object for %s", sha256[:12])

    def delete(self, blob):
        with storage_guard("deleting a blob"):
            self.storage.delete(blob.key)

    def ping(self):
        """Raise StorageUnavailable unless the store answers (S3: HEAD of the bucket; disk: the
        directory is there, made if need be, and writable)."""
        with storage_guard("reaching the store"):
            if self.is_local:
                location = self.storage.location
                os.makedirs(location, exist_ok=True)
                if not os.access(location, os.W_OK | os.X_OK):
                    raise StorageUnavailable()
            else:
                self._client.head_bucket(Bucket=self.storage.bucket_name)

    def delete_object(self, key):
        """Remove one listed object (orphan sweep): a key from `objects()`, never a request value."""
        if not key.startswith(BLOBS_PREFIX) or ".." in key.split("/"):
            raise ValueError("not an object of the blob store")
        with storage_guard("deleting an object"):
            self.storage.delete(key)

    def objects(self):
        """Every object under blobs/ (temporary `.part` files on disk included), as StoredObjects."""
        with storage_guard("listing objects"):
            if self.is_local:
                root = self.storage.path(BLOBS_PREFIX.rstrip("/"))
                for directory, _, names in os.walk(root):
                    for name in names:
                        path = os.path.join(directory, name)
                        try:
                            stat = os.stat(path)
                        except FileNotFoundError:  # removed meanwhile
                            continue
                        key = os.path.relpath(path, self.storage.location).replace(os.sep, "/")
                        yield StoredObject(key, stat.st_size, stat.st_mtime)
                return
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.storage.bucket_name, Prefix=BLOBS_PREFIX
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"], item["Size"], item["LastModified"].timestamp())

    def abort_stale_uploads(self, cutoff):
        """S3: abort multipart uploads under blobs/ begun before `cutoff` (a POSIX timestamp), the
        parts an upload stopped mid-way left in the store. Returns how many were aborted."""
        if self.is_local:
            return 0
        aborted = 0
        with storage_guard("aborting stale uploads"):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.storage.bucket_name, Prefix=BLOBS_PREFIX
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() > cutoff:
                        continue
                    self._client.abort_multipart_upload(
                        Bucket=self.storage.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    def sha256_of(self, blob):
        """The sha256 of the object's bytes as the store returns them (read whole, 1 MiB at a time)."""
        digest = hashlib.sha256()
        if self.is_local:
            with self.open(blob) as handle, storage_guard("reading a blob"):
                for chunk in iter(lambda: handle.read(READ_CHUNK), b""):
                    digest.update(chunk)
            return digest.hexdigest()
        body = self.stream(blob)
        try:
            with storage_guard("reading a blob"):
                for chunk in body:
                    digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()

    def exists(self, blob):
        with storage_guard("checking a blob"):
            return self.storage.exists(blob.key)

    def open(self, blob):
        with storage_guard("reading a blob"):
            return self.storage.open(blob.key, "rb")

    def serve(
        self,
        blob,
        file_name,
        request,
        *,
        content_type="application/octet-stream",
        allow_redirect=True,
        headers=None,
    ):
        """A download response: sendfile/FileResponse, X-Accel-Redirect, or a presigned redirect."""
        headers = {
            "Content-Disposition": content_disposition_header(True, os.path.basename(file_name)),
            "ETag": f'"{blob.sha256}"',
            **(headers or {}),
        }
        method = getattr(request, "method", "GET")
        if self.is_local and settings.X_ACCEL_REDIRECT_PREFIX and method != "HEAD":
            response = HttpResponse(content_type=content_type, headers=headers)
            response["X-Accel-Redirect"] = settings.X_ACCEL_REDIRECT_PREFIX + blob.key
            if hasattr(request, "META"):  # the bytes nginx sends for this answer, for its log line
                request.META[observe.SENT_BY_NGINX] = blob.size
            return response
        if not self.is_local and allow_redirect and method != "HEAD":
            self.check(blob)  # never a link to nothing: a missing object is 503 here
            with storage_guard("signing a download URL"):
                url = self.storage.url(
                    blob.key,
                    parameters={"ResponseContentDisposition": headers["Content-Disposition"]},
                )
            return HttpResponseRedirect(url)
        if method == "HEAD":
            self.check(blob)
            response = HttpResponse(content_type=content_type, headers=headers)
            response["Content-Length"] = str(blob.size)
            return response
        if self.is_local:
            handle = self.open(blob)
            if os.fstat(handle.fileno()).st_size != blob.size:  # never a short or long file as the blob
                handle.close()
                logger.error("object of blob %s is not %d bytes", blob.sha256[:12], blob.size)
                raise StorageUnavailable()
            disposition = headers.pop("Content-Disposition")
            response = FileResponse(handle, content_type=content_type, headers=headers)
            response["Content-Disposition"] = disposition
        else:
            response = StreamingHttpResponse(self.stream(blob), content_type=content_type, headers=headers)
            response["Content-Length"] = str(blob.size)
        return response


class _S3Body:
    """An S3 GET's body as an iterable of 1 MiB pieces, closed with the response. A store that
    fails mid-way ends the iteration with an error: the client sees a short body (its
    Content-Length was the blob's size), never a complete-looking wrong file."""

    def __init__(self, body):
        self.body = body

    def __iter__(self):
        yield from self.body.iter_chunks(READ_CHUNK)

    def close(self):
        self.body.close()
