"""Decompression bombs and broken archives, built in memory in a fraction of a second.

A gzip'd tar bomb is a concatenation of gzip members (one stream to every reader): the tar
headers, then one compressed chunk of zeros repeated as often as needed, so gigabytes of
inflated data cost a few megabytes and no time to build.
"""

import functools
import gzip
import io
import tarfile
import zipfile

CHUNK = 64 * 1024 * 1024  # zeros per repeated gzip member
BLOCK = tarfile.BLOCKSIZE


@functools.cache
def _zeros_gz(size):
    return gzip.compress(bytes(size), compresslevel=9, mtime=0)


def _gz_zeros(size):
    """gzip members that inflate to `size` zero bytes."""
    parts = [_zeros_gz(CHUNK)] * (size // CHUNK)
    if size % CHUNK:
        parts.append(_zeros_gz(size % CHUNK))
    return b"".join(parts)


def _header(name, size):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padded(size):
    return -(-size // BLOCK) * BLOCK


def tar_gz_bomb(zeros, *, files=None, count=1):
    """A .tar.gz: the real `files` ({name: bytes}) first, then `count` members named
    bomb/<n>.bin of `zeros` zero bytes each; valid, and inflating to about count * zeros."""
    out = []
    for name, data in (files or {}).items():
        out.append(gzip.compress(_header(name, len(data)) + data + bytes(_padded(len(data)) - len(data)), mtime=0))
    for number in range(count):
        out.append(gzip.compress(_header(f"bomb/{number}.bin", zeros), mtime=0))
        out.append(_gz_zeros(_padded(zeros)))
    out.append(gzip.compress(bytes(2 * BLOCK), mtime=0))
    return b"".join(out)


def zip_with_members(count, *, files=None):
    """A zip of the real `files` then `count` empty members: a bomb of entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in (files or {}).items():
            archive.writestr(name, data)
        for number in range(count):
            archive.writestr(f"m/{number}", b"")
    return buffer.getvalue()


def zip_with_corrupt_deflate(files, corrupt):
    """A zip of `files` ({name: bytes}, deflated) whose member `corrupt` has garbage in place of
    its deflate data (the local header, sizes and directory stay intact)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(corrupt)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    # 0xff 0xff...: a deflate block of reserved type 3, "invalid block type".
    data[start : start + info.compress_size] = b"\xff" * info.compress_size
    return bytes(data)


class InflationMeter:
    """The most bytes any one archive scan inflated (registry.archives.Budget's running count),
    recorded while installed with `install(monkeypatch)`: what a test asserts instead of a time."""

    def __init__(self):
        self.most = 0

    def install(self, monkeypatch):
        from registry import archives

        spend = archives.Budget.spend

        def counted(budget, count):
            self.most = max(self.most, budget.bytes + count)
            return spend(budget, count)

        monkeypatch.setattr(archives.Budget, "spend", counted)
        return self
