"""registry.archives: budgets on decompressed bytes and members, corrupt data as Invalid.

No database, no cache, no HTTP: bombs are built in memory (tests/bombs.py) and written under
tmp_path, and `_isolated_storage` replaces tests/conftest.py's autouse fixture.
"""

import gzip
import io
import tarfile
import zipfile

import pytest

from registry import archives
from registry.errors import Invalid
from tests.bombs import InflationMeter, tar_gz_bomb, zip_with_corrupt_deflate, zip_with_members

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.fixture(autouse=True)
def _isolated_storage():
    """Nothing here stores blobs or caches anything."""
    yield


def write(tmp_path, data, name="archive"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def scan_tar(path, **limits):
    with archives.open_tar(path, "the archive", **limits) as archive:
        return [member.name for member in archive]


def small_tar_gz(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_budget_is_ten_times_the_limit_capped_at_one_gib():
    assert archives.budget_for(MiB) == 10 * MiB
    assert archives.budget_for(500 * MiB) == GiB
    assert archives.budget_for(0) == GiB  # no size limit: still a budget


def test_an_ordinary_tar_gz_is_read(tmp_path):
    path = write(tmp_path, small_tar_gz({"a/x.txt": b"x" * 1000, "a/y.txt": b"y"}))
    with archives.open_tar(path, "the archive", max_bytes=MiB) as archive:
        names = []
        for member in archive:
            names.append(member.name)
            if member.name == "a/x.txt":
                assert archive.extractfile(member).read() == b"x" * 1000
    assert names == ["a/x.txt", "a/y.txt"]


def test_one_member_of_200_mb_of_zeros_is_refused_from_its_header(tmp_path, monkeypatch):
    data = tar_gz_bomb(200 * MiB)
    assert len(data) < MiB  # compresses about 1000 to 1
    path = write(tmp_path, data)
    meter = InflationMeter().install(monkeypatch)
    with pytest.raises(Invalid, match=r"^400 Bad request - the archive exceeds the limit of 10485760 bytes"):
        scan_tar(path, max_bytes=10 * MiB)
    assert meter.most <= archives.READ_SIZE  # the first read's header, not the member's data


def test_inflated_bytes_are_counted_even_when_each_member_fits(tmp_path):
    # 40 members of 1 MiB: each header fits what is left until the budget is spent by inflating.
    path = write(tmp_path, tar_gz_bomb(MiB, count=40))
    with pytest.raises(Invalid, match="exceeds the limit of 10485760 bytes when decompressed"):
        scan_tar(path, max_bytes=10 * MiB)
    assert len(scan_tar(path, max_bytes=64 * MiB)) == 40  # the same archive, within budget


def test_reading_a_member_counts_too(tmp_path):
    path = write(tmp_path, tar_gz_bomb(4 * MiB))
    with pytest.raises(Invalid, match="exceeds the limit"):
        with archives.open_tar(path, "the archive", max_bytes=4 * MiB + 1024) as archive:
            for member in archive:
                archive.extractfile(member).read()  # data fits; the end blocks do not


def test_ten_gb_equivalent_is_refused_within_its_budget(tmp_path, monkeypatch):
    """The issue's case: ~10 MB of .tgz inflating to 10 GB, as one member or as 160 of 64 MiB:
    refused having inflated no more than the budget and one read."""
    budget = archives.budget_for(MiB)
    for data in (tar_gz_bomb(10 * 1024 * MiB), tar_gz_bomb(64 * MiB, count=160)):
        assert len(data) < 11 * MiB
        path = write(tmp_path, data)
        meter = InflationMeter().install(monkeypatch)
        with pytest.raises(Invalid, match="exceeds the limit"):
            scan_tar(path, max_bytes=budget)
        assert meter.most <= budget + archives.READ_SIZE


def test_too_many_tar_members(tmp_path):
    path = write(tmp_path, small_tar_gz({f"m/{n}": b"" for n in range(30)}))
    with pytest.raises(Invalid, match="exceeds the limit of 20 members"):
        scan_tar(path, max_bytes=MiB, max_members=20)
    assert len(scan_tar(path, max_bytes=MiB, max_members=30)) == 30


def test_the_member_cap_defaults_to_the_module_constant(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "MAX_MEMBERS", 5)
    path = write(tmp_path, small_tar_gz({f"m/{n}": b"" for n in range(6)}))
    with pytest.raises(Invalid, match="exceeds the limit of 5 members"):
        scan_tar(path, max_bytes=MiB)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x1f\x8b\x08\x00garbage",
        gzip.compress(b"not a tar at all, just text" * 40),
        small_tar_gz({"a": b"x" * 5000})[:-40],  # truncated
        small_tar_gz({"a": b"x" * 5000})[:30] + b"\xff" * 200,  # corrupt deflate
    ],
    ids=["empty", "bad-gzip", "not-tar", "truncated", "corrupt-deflate"],
)
def test_broken_tar_gz_is_invalid_with_the_callers_message(tmp_path, data):
    path = write(tmp_path, data)
    with pytest.raises(Invalid, match=r"^broken$"):
        with archives.open_tar(path, "the archive", max_bytes=MiB, unreadable="broken") as archive:
            for member in archive:
                archive.extractfile(member).read()


def test_an_ordinary_zip_is_read_and_its_reads_counted(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", bytes(3 * MiB))
        archive.writestr("small.txt", b"hello")
    path = write(tmp_path, buffer.getvalue())
    with archives.open_zip(path, "the zip", max_bytes=MiB) as archive:
        assert [info.filename for info in archive.members] == ["big.bin", "small.txt"]
        with archive.open(archive.members[1]) as handle:
            assert handle.read() == b"hello"
        with pytest.raises(Invalid, match="the zip exceeds the limit of 1048576 bytes when decompressed"):
            archive.open(archive.members[0]).read()  # an unbounded read stops at the budget


def test_a_zip_with_too_many_members_is_refused_before_its_directory_is_parsed(tmp_path, monkeypatch):
    path = write(tmp_path, zip_with_members(2000))
    parsed = []
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: parsed.append(self))
    with pytest.raises(Invalid, match="^400 Bad request - the zip exceeds the limit of 1000 members$"):
        with archives.open_zip(path, "the zip", max_bytes=MiB, max_members=1000):
            pass
    assert parsed == []


def test_corrupt_deflate_data_in_a_zip_is_invalid(tmp_path):
    path = write(tmp_path, zip_with_corrupt_deflate({"a.txt": b"hello " * 500}, "a.txt"))
    with pytest.raises(Invalid, match="^400 Bad request - the zip is not a readable archive$") as caught:
        with archives.open_zip(path, "the zip", max_bytes=MiB) as archive:
            archive.open(archive.members[0]).read(100)
    assert "zlib.error" in repr(type(caught.value.__cause__)) or "Error -3" in str(caught.value.__cause__)


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x05\x06" + b"\0" * 10], ids=["empty", "text", "short-end"])
def test_not_a_zip_is_invalid(tmp_path, data):
    with pytest.raises(Invalid, match="^nope$"):
        with archives.open_zip(write(tmp_path, data), "the zip", max_bytes=MiB, unreadable="nope"):
            pass
