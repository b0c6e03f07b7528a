"""Pure unit tests of PyPI parsing (packages_pypi.parsers, packages_pypi.format): versions,
Requires-Python, distribution file names, core metadata read from wheels and sdists, twine's upload
form, and PEP 503 name / PEP 440 version normalisation.

No database, no cache, no HTTP: archives are built in memory and written under tmp_path, and
`_isolated_storage` replaces tests/conftest.py's autouse fixture (which clears the cache).
"""

import hashlib
import io
import re
import tarfile
import zipfile

import pytest
from packaging.version import Version

from packages_pypi import parsers
from packages_pypi.format import PypiFormat
from packages_pypi.parsers import (
    SDIST,
    WHEEL,
    check_core_metadata,
    check_file_name,
    parse_core_metadata,
    parse_file_name,
    parse_form,
    parse_requires_python,
    parse_version,
    read_core_metadata,
)
from registry.errors import Invalid
from registry.formats import DuplicateRule
from tests.formats.pypi.dists import core_metadata, make_sdist, make_wheel

FORMAT = PypiFormat()


@pytest.fixture(autouse=True)
def _isolated_storage():
    """Nothing here stores blobs or caches anything."""
    yield


# --- versions and Requires-Python ------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("1.0", "1.0"), ("v1.0", "1.0"), ("1!2.0rc1.post3.dev4", "1!2.0rc1.post3.dev4"), (" 1.0 ", "1.0")],
)
def test_pep440_versions_are_parsed(value, expected):
    assert str(parse_version(value)) == expected


@pytest.mark.parametrize("value", ["", None, "1.0-foo-bar", "latest", "1..0", "1.0.\uff10", "\u0661.0", "../1.0"])
def test_non_pep440_versions_are_refused(value):
    with pytest.raises(Invalid, match="^400 Bad request - core metadata Version is invalid$"):
        parse_version(value, "core metadata Version")


@pytest.mark.parametrize("value, expected", [(None, ""), ("  ", ""), (" >=3.8 ", ">=3.8"), (">=3.8,<4", ">=3.8,<4")])
def test_requires_python_is_stripped(value, expected):
    assert parse_requires_python(value) == expected


@pytest.mark.parametrize("value", [">=3.8a!", "python3", ">=" + "3" * 254, ">=3.8\x00"])
def test_an_invalid_requires_python_is_refused(value):
    with pytest.raises(Invalid, match="requires_python is invalid"):
        parse_requires_python(value)


# --- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file_name, kind, name, version",
    [
        ("my_pkg-1.0-py3-none-any.whl", WHEEL, "my-pkg", "1.0"),
        ("pkg-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl", WHEEL, "pkg", "1.0"),
        ("My.Pkg-1.0.tar.gz", SDIST, "my-pkg", "1.0"),
        ("pkg-1!2.0rc1.zip", SDIST, "pkg", "1!2.0rc1"),
    ],
)
def test_distribution_file_names_give_kind_name_and_version(file_name, kind, name, version):
    assert parse_file_name(file_name) == (kind, name, Version(version))


@pytest.mark.parametrize(
    "file_name, message",
    [(name, "file name is invalid") for name in ("", "p" * 250 + "-1.0.tar.gz", "../pkg-1.0.tar.gz", "pkg-1.0..tar.gz",
     "dir/pkg-1.0.tar.gz", "-pkg-1.0.tar.gz", "pkg 1.0.tar.gz", "pkg-1.0.\u0663.tar.gz", "pkg-1.0\x00.whl",
     "pkg-1.0.tar.gz\n")]
    + [(name, "only wheels") for name in ("pkg-1.0.egg", "pkg-1.0.tar.bz2")]
    + [(name, "invalid distribution file name") for name in ("pkg-x.tar.gz", "pkg.whl", "pkg-1.0-py3-none.whl")],
)  # fmt: skip
def test_bad_file_names_are_refused(file_name, message):
    with pytest.raises(Invalid, match=message):
        parse_file_name(file_name)


# --- core metadata inside the archive ---------------------------------------------------------


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            info = tarfile.TarInfo(info) if isinstance(info, str) else info
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_core_metadata_is_read_from_wheels_and_sdists(tmp_path):
    expected = core_metadata("my-pkg", "1.0")
    wheel = write(tmp_path, "w.whl", make_wheel("my-pkg", "1.0"))
    sdist = write(tmp_path, "s.tar.gz", make_sdist("my-pkg", "1.0"))
    sdist_zip = write(tmp_path, "s.zip", zip_bytes([("my_pkg-1.0/PKG-INFO", expected), ("my_pkg-1.0/setup.py", b"")]))
    assert read_core_metadata(wheel, WHEEL, "my_pkg-1.0-py3-none-any.whl") == expected
    assert read_core_metadata(sdist, SDIST, "my_pkg-1.0.tar.gz") == expected
    assert read_core_metadata(sdist_zip, SDIST, "my_pkg-1.0.zip") == expected


@pytest.mark.parametrize(
    "members, message",
    [
        ([("pkg/__init__.py", b"")], "exactly one core metadata file"),
        ([("a.dist-info/METADATA", b"x"), ("b.dist-info/METADATA", b"x")], "exactly one core metadata file"),
        ([("x/a.dist-info/METADATA", b"x")], "exactly one core metadata file"),
    ]
    + [([("a.dist-info/METADATA", b"x"), (name, b"")], re.escape(f"unsafe path: {name!r}"))
       for name in ("../evil", "/etc/passwd", "a\\..\\b", "C:/evil", "pkg/../../evil")],
)  # fmt: skip
def test_bad_wheels_are_refused(tmp_path, members, message):
    with pytest.raises(Invalid, match=message):
        read_core_metadata(write(tmp_path, "w.whl", zip_bytes(members)), WHEEL, "w-1.0-py3-none-any.whl")


@pytest.mark.parametrize(
    "members, message",
    [
        ([("pkg-1.0/setup.py", b"")], "exactly one PKG-INFO"),
        ([("a/PKG-INFO", b"x"), ("b/PKG-INFO", b"x")], "exactly one PKG-INFO"),
        ([(link("a/PKG-INFO", "", tarfile.DIRTYPE), b"")], "exactly one PKG-INFO"),
    ]
    + [([("a/PKG-INFO", b"x"), (name, b"")], "unsafe path") for name in ("../evil", "/abs", "a\\..\\b")]
    + [([("a/PKG-INFO", b"x"), (member, b"")], "unsafe member") for member in (link("a/l", "../../etc/passwd"),
       link("a/l", "/etc/passwd", tarfile.LNKTYPE), link("a/dev", "", tarfile.CHRTYPE))],
)  # fmt: skip
def test_bad_sdists_are_refused(tmp_path, members, message):
    with pytest.raises(Invalid, match=message):
        read_core_metadata(write(tmp_path, "s.tar.gz", tar_bytes(members)), SDIST, "s-1.0.tar.gz")


@pytest.mark.parametrize(
    "data, kind, file_name, message",
    [
        (b"not a zip", WHEEL, "w-1.0-py3-none-any.whl", "wheel is not a valid zip archive"),
        (b"not a zip", SDIST, "s-1.0.zip", "source distribution is not a valid zip archive"),
        (b"", SDIST, "s-1.0.tar.gz", "not a readable .tar.gz archive"),
        (b"\x1f\x8b\x08\x00garbage", SDIST, "s-1.0.tar.gz", "not a readable .tar.gz archive"),
    ],
)
def test_unreadable_archives_are_refused(tmp_path, data, kind, file_name, message):
    with pytest.raises(Invalid, match=message):
        read_core_metadata(write(tmp_path, file_name, data), kind, file_name)


@pytest.mark.parametrize(
    "limit, value, message",
    [
        ("MAX_METADATA_SIZE", 10, "core metadata file is too large"),
        ("MAX_MEMBERS", 1, "too many members"),
        ("MAX_TOTAL_UNCOMPRESSED", 10, "too large when uncompressed"),
    ],
)
def test_archive_guards_apply_to_wheels_and_sdists(tmp_path, monkeypatch, limit, value, message):
    monkeypatch.setattr(parsers, limit, value)
    with pytest.raises(Invalid, match=message):
        read_core_metadata(write(tmp_path, "w.whl", make_wheel("pkg", "1.0")), WHEEL, "pkg-1.0-py3-none-any.whl")
    with pytest.raises(Invalid, match=message):
        read_core_metadata(write(tmp_path, "s.tar.gz", make_sdist("pkg", "1.0")), SDIST, "pkg-1.0.tar.gz")


# --- core metadata fields --------------------------------------------------------------------


def test_core_metadata_fields_are_parsed():
    data = core_metadata("My.Pkg", "1.0.post1", requires_python=">=3.9", summary="Caf\u00e9")
    core = parse_core_metadata(data)
    expected = ("My.Pkg", Version("1.0.post1"), ">=3.9", "Caf\u00e9")
    assert (core.name, core.version, core.requires_python, core.summary) == expected
    assert (core.text, core.sha256) == (data.decode(), hashlib.sha256(data).hexdigest())


def test_an_invalid_requires_python_in_core_metadata_is_dropped():
    assert parse_core_metadata(core_metadata("pkg", "1.0", requires_python="nonsense")).requires_python == ""


@pytest.mark.parametrize("data, message", [
    (b"Name: pkg\nVersion: 1.0\nSummary: \xff\n", "not valid UTF-8"),
    (b"Name: pkg\nVersion: 1.0\nSummary: a\x00b\n", "contains NUL bytes"),
    *[(data, "no Name or no Version") for data in (b"Version: 1.0\n", b"Name: pkg\n", b"")],
    (b"Name: -pkg\nVersion: 1.0\n", "core metadata Name is invalid"),
    (b"Name: p\xc3\xa9\nVersion: 1.0\n", "core metadata Name is invalid"),
    (b"Name: pkg\nVersion: one\n", "core metadata Version is invalid"),
])  # fmt: skip
def test_bad_core_metadata_is_refused(data, message):
    with pytest.raises(Invalid, match=message):
        parse_core_metadata(data)


# --- the upload form -------------------------------------------------------------------------


def test_the_upload_form_is_stripped_lowered_and_truncated():
    form = parse_form(
        {"name": " My.Pkg ", "version": " 1.0 ", "sha256_digest": " " + "AB" * 32, "md5_digest": "Cd" * 16,
         "requires_python": ">=3.8", "summary": "s" * 300, "keywords": "", "author": "ignored"}
    )  # fmt: skip
    assert (form.name, form.version, form.sha256_digest, form.md5_digest) == ("My.Pkg", "1.0", "ab" * 32, "cd" * 16)
    assert (form.requires_python, form.metadata) == (">=3.8", {"summary": "s" * 255})


@pytest.mark.parametrize(
    "fields, message",
    [({":action": "remove_pkg"}, "unsupported action 'remove_pkg'")]
    + [({"name": name, "version": "1.0"}, "name is invalid") for name in ("", "p" * 256, "pkg-", "p\u00e9", "../pkg")]
    + [({"name": "pkg", "version": version}, "version is invalid") for version in ("", "1" * 256, "banana")]
    + [
        ({"name": "pkg", "version": "1.0", "sha256_digest": "ab" * 31}, "sha256_digest is invalid"),
        ({"name": "pkg", "version": "1.0", "sha256_digest": "zz" * 32}, "sha256_digest is invalid"),
        ({"name": "pkg", "version": "1.0", "md5_digest": "0" * 33}, "md5_digest is invalid"),
        ({"name": "pkg", "version": "1.0", "requires_python": ">=>3"}, "requires_python is invalid"),
    ],
)
def test_bad_upload_forms_are_refused(fields, message):
    with pytest.raises(Invalid, match=message):
        parse_form(fields)


@pytest.mark.parametrize("name", ["pac\u212aage", "\u017fetuptools"])
def test_non_ascii_look_alike_names_are_refused(name):
    with pytest.raises(Invalid, match="name is invalid"):
        parse_form({"name": name, "version": "1.0"})


def test_the_file_and_its_metadata_must_name_the_form_release():
    form = parse_form({"name": "My.Pkg", "version": "1.0"})
    assert check_file_name(form, "my_pkg-1.0.0-py3-none-any.whl") == WHEEL
    assert check_core_metadata(form, parse_core_metadata(core_metadata("my-pkg", "1.0.0"))) is None
    with pytest.raises(Invalid, match="does not match My.Pkg 1.0"):
        check_file_name(form, "other-1.0.tar.gz")
    with pytest.raises(Invalid, match="does not match My.Pkg 1.0"):
        check_file_name(form, "my_pkg-1.1.tar.gz")
    with pytest.raises(Invalid, match="core metadata Name 'other' does not match name 'My.Pkg'"):
        check_core_metadata(form, parse_core_metadata(core_metadata("other", "1.0")))
    with pytest.raises(Invalid, match="core metadata Version 2.0 does not match version 1.0"):
        check_core_metadata(form, parse_core_metadata(core_metadata("my-pkg", "2.0")))


# --- format ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, normal", [("My.Pkg", "my-pkg"), ("a__b--c..d", "a-b-c-d"), ("PKG", "pkg")])
def test_names_are_pep503_normalised(name, normal):
    assert FORMAT.normalize_name(name) == normal


@pytest.mark.parametrize("version, normal", [("1.0.0", "1"), ("v1.0", "1"), ("1.0RC1", "1rc1"), ("junk", "junk")])
def test_versions_are_pep440_normalised(version, normal):
    assert FORMAT.normalize_version(version) == normal


def test_the_format_validates_names_and_versions():
    assert FORMAT.validate_name("My.Pkg_2") is None and FORMAT.validate_version("1.0") is None
    for name in ("", "-pkg", "pkg.", "p\u00e9", "a/b", "p" * 256):
        with pytest.raises(Invalid, match="package_name is invalid"):
            FORMAT.validate_name(name)
    with pytest.raises(Invalid, match="version is invalid"):
        FORMAT.validate_version("latest")


def test_a_name_with_a_trailing_newline_is_refused():
    with pytest.raises(Invalid):
        FORMAT.validate_name("pkg\n")


def test_duplicates_are_400s_twine_can_skip():
    error = FORMAT.duplicate_error()
    assert FORMAT.duplicate_rule is DuplicateRule.REJECT_FILE
    assert (type(error), error.message) == (Invalid, "400 Bad request - File already exists")


@pytest.mark.parametrize("message, reason", [
    ("400 Bad request - File already exists", "File already exists"), ("400 Bad request - a\x01 \u00e9\n", "a "),
    ("400 Bad request - " + "x" * 300, "x" * 200), ("400 Bad request", "Bad Request"),
])  # fmt: skip
def test_error_reason_phrases_say_why_in_printable_ascii(message, reason):
    response = FORMAT.error_response(Invalid(message), None)
    assert (response.status_code, response.reason_phrase) == (400, reason)
