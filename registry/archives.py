"""Reading uploaded archives under a budget: decompression bombs and broken archives are a 400.

A format that looks inside an upload (a manifest in a .tgz, core metadata in a zip) opens it
here. Every decompressed byte that is actually produced counts against `max_bytes`, every member
against `max_members`, and the first byte or member over budget raises Invalid: a small upload
that inflates to gigabytes is refused after at most `max_bytes` of work, never after the whole
inflation. Corrupt data (zlib.error, EOFError, a bad header, an unsupported or encrypted zip
member...) raised anywhere inside the `with` block is turned into Invalid too, never a 500.

Budgets: `budget_for(max_file_size)` is RATIO times the format's size limit (ordinary packages
inflate 2-5x, text-heavy ones rarely past 10x), never more than MAX_BYTES (1 GiB: about 3.5 s
of inflating for a worker at worst, far inside a request timeout; an unlimited format gets it
too). MAX_MEMBERS is 100,000: real packages reach tens of thousands of files, and a tar
member costs at least a 512-byte header, which is counted as well.

A compressed tar is read as one stream (tarfile's `r|` mode) through a counting reader, so the
members skipped are counted as they are inflated, and a member whose declared size does not
fit what is left is refused from its header, before any of it is inflated. A zip is random
access: only the members opened are inflated, so only they count; its member count is checked
from the end-of-central-directory record before the directory is parsed.
"""

import gzip
import tarfile
import zipfile
import zlib
from contextlib import contextmanager

from registry.errors import Invalid

RATIO = 10
MAX_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 100_000
# Skipped tar members are read (inflated) in pieces of this size: large, so that inflating is
# the cost, not Python calls (tarfile's 10 KiB default makes it 3 times slower).
READ_SIZE = 1024 * 1024
# A central directory entry is 46 bytes plus its name, extra field and comment: allow plenty.
MAX_DIRECTORY_BYTES_PER_MEMBER = 1024

# What broken or hostile archive data raises while it is parsed or inflated.
ARCHIVE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,  # gzip.BadGzipFile, truncated reads
    NotImplementedError,  # an unsupported zip compression method
    RuntimeError,  # an encrypted zip member
    ValueError,  # malformed header fields
)


def budget_for(max_file_size):
    """The decompressed-byte budget for an upload whose format allows `max_file_size` bytes
    (0: no limit)."""
    if not max_file_size or max_file_size <= 0:
        return MAX_BYTES
    return min(max_file_size * RATIO, MAX_BYTES)


class Budget:
    def __init__(self, what, max_bytes, max_members):
        self.what = what
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.bytes = 0
        self.members = 0

    def spend(self, count):
        self.bytes += count
        if self.bytes > self.max_bytes:
            raise self.too_large()

    def fits(self, count):
        if count < 0 or self.bytes + count > self.max_bytes:
            raise self.too_large()

    def member(self):
        self.members += 1
        if self.members > self.max_members:
            raise self.too_many()

    def too_large(self):
        return Invalid(f"400 Bad request - {self.what} exceeds the limit of {self.max_bytes} bytes when decompressed")

    def too_many(self):
        return Invalid(f"400 Bad request - {self.what} exceeds the limit of {self.max_members} members")


class _CountingReader:
    """A read-only file over `inner` whose every byte read is spent from `budget`."""

    def __init__(self, inner, budget):
        self._inner = inner
        self._budget = budget

    def read(self, size=-1):
        if size is None or size < 0:  # never inflate without a bound
            size = self._budget.max_bytes - self._budget.bytes + 1
        data = self._inner.read(size)
        self._budget.spend(len(data))
        return data

    def readable(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._inner.close()


class TarReader:
    """Iterate for the members (each counted, its declared size checked against what is left);
    `extractfile(member)` for the current member's data, read from the same counted stream."""

    def __init__(self, archive, budget):
        self._archive = archive
        self.budget = budget

    def __iter__(self):
        for member in self._archive:
            self.budget.member()
            if member.isfile() or member.type not in tarfile.SUPPORTED_TYPES:
                self.budget.fits(member.size)
            yield member

    def extractfile(self, member):
        return self._archive.extractfile(member)


class ZipReader:
    """`members` (the zip's infolist, already counted) and `open(info)`: a member's data, its
    inflated bytes spent from the budget."""

    def __init__(self, archive, budget):
        self._archive = archive
        self.budget = budget
        self.members = archive.infolist()

    def open(self, info):
        return _CountingReader(self._archive.open(info), self.budget)


def _invalid(what, unreadable):
    return Invalid(unreadable or f"400 Bad request - {what} is not a readable archive")


@contextmanager
def open_tar(path, what, *, max_bytes, max_members=None, gzipped=True, unreadable=None):
    """A TarReader over the (gzip-compressed) tar at `path`. `what` names it in messages;
    `unreadable` is the message for a corrupt archive, if the format has its own."""
    max_members = MAX_MEMBERS if max_members is None else max_members
    budget = Budget(what, max_bytes, max_members)
    try:
        with open(path, "rb") as raw:
            inflated = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            stream = _CountingReader(inflated, budget)
            with tarfile.open(fileobj=stream, mode="r|", bufsize=READ_SIZE) as archive:
                yield TarReader(archive, budget)
    except Invalid:
        raise
    except ARCHIVE_ERRORS as exc:
        raise _invalid(what, unreadable) from exc


def _zip_entry_count(path):
    """(entries, central directory size) from the end record, or None when there is none."""
    with open(path, "rb") as handle:
        end = zipfile._EndRecData(handle)  # noqa: SLF001 - the stdlib's own end-record reader
    if not end:
        return None
    return end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # noqa: SLF001


@contextmanager
def open_zip(path, what, *, max_bytes, max_members=None, unreadable=None):
    """A ZipReader over the zip at `path`, refused before its directory is parsed when the end
    record announces too many members or too large a directory."""
    max_members = MAX_MEMBERS if max_members is None else max_members
    budget = Budget(what, max_bytes, max_members)
    try:
        counts = _zip_entry_count(path)
        if counts is None:
            raise _invalid(what, unreadable)
        entries, directory_size = counts
        if entries > max_members or directory_size > max_members * MAX_DIRECTORY_BYTES_PER_MEMBER:
            raise budget.too_many()
        with zipfile.ZipFile(path) as archive:
            reader = ZipReader(archive, budget)
            if len(reader.members) > max_members:
                raise budget.too_many()
            budget.members = len(reader.members)
            yield reader
    except Invalid:
        raise
    except ARCHIVE_ERRORS as exc:
        raise _invalid(what, unreadable) from exc
