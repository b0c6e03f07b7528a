"""Pure unit tests of NuGet parsing (packages_nuget.parsers, packages_nuget.format): ids, versions,
their normalised form and order, the push body's multipart boundary, the .nupkg zip, its .nuspec
and the v2 `Dependencies` string.

No database, no cache, no HTTP: packages are built in memory and written under tmp_path, and
`_isolated_storage` replaces tests/conftest.py's autouse fixture (which clears the cache).
"""

import io
import zipfile

import pytest

from packages_nuget import parsers
from packages_nuget.format import NugetFormat
from packages_nuget.parsers import (
    METADATA_MISSING,
    dependencies_string,
    is_prerelease,
    multipart_boundary,
    normalize_version,
    parse_nuspec,
    read_nuspec_bytes,
    sort_key,
    valid_name,
    valid_version,
)
from registry.errors import Conflict, Invalid
from tests.formats.nuget.nupkg import nupkg, nuspec

FORMAT = NugetFormat()


@pytest.fixture(autouse=True)
def _isolated_storage():
    """Nothing here stores blobs or caches anything."""
    yield


# --- ids and versions ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Acme.Tools", "a", "A-b_c+d.e", "x" * 255, "...x", "1"])
def test_valid_ids(name):
    assert valid_name(name) is True


@pytest.mark.parametrize("name", ["", None, ".", "..", "x" * 256, "a/b", "../a", "a b", "\u00c4cme", "a\x00", "a\tb"])
def test_invalid_ids(name):
    assert valid_name(name) is False


@pytest.mark.parametrize(
    "version, normal, prerelease",
    [
        ("1.0", "1.0.0", False),
        ("01.02.003", "1.2.3", False),
        ("1.0.0.0", "1.0.0", False),
        ("1.0.0.1", "1.0.0.1", False),
        ("1.0.0-Beta+Build.5", "1.0.0-beta", True),
        ("1.2.3-RC.1", "1.2.3-rc.1", True),
        ("1.2.3+sha.abc", "1.2.3", False),
        ("2147483648.0", "2147483648.0.0", False),
    ],
)
def test_versions_are_normalised_the_nuget_way(version, normal, prerelease):
    assert valid_version(version) is True
    assert (normalize_version(version), is_prerelease(version)) == (normal, prerelease)


@pytest.mark.parametrize(
    "version", ["", None, "1", "1.2.3.4.5", "v1.0", "1.0-", "1.0+", "1.0-a..b", "1.0-\u00e9", " 1.0", "1.0 ", "1" * 256]
)
def test_invalid_versions_are_refused_and_only_lowered_by_normalisation(version):
    assert valid_version(version) is False
    assert normalize_version(version) == (version or "").lower()
    assert is_prerelease(version) is False


@pytest.mark.parametrize("version", ["1.0.\u0663", "1.0.\uff13"])
def test_versions_with_non_ascii_digits_are_refused(version):
    assert valid_version(version) is False


@pytest.mark.parametrize("check, value", [(valid_name, "Acme\n"), (valid_version, "1.0.0\n")])
def test_a_trailing_newline_is_refused(check, value):
    assert check(value) is False


def test_versions_sort_by_nuget_precedence():
    ordered = ["junk", "0.9", "1.0.0-alpha.2", "1.0.0-alpha.10", "1.0.0-Beta", "1.0.0-rc", "1.0", "1.0.0.1", "10.0"]
    assert sorted(reversed(ordered), key=sort_key) == ordered
    assert sort_key("1.0.0-BETA") == sort_key("1.0.0-beta") and sort_key("1.0") == sort_key("1.0.0.0+b")


# --- the push body ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type, boundary",
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ('Multipart/Form-Data;BOUNDARY="a b"', "a b"),
        ("multipart/form-data; charset=utf-8; boundary=x-y", "x-y"),
        ("multipart/form-data; boundary=" + "b" * 200, "b" * 200),
    ],
)
def test_the_multipart_boundary_is_read(content_type, boundary):
    assert multipart_boundary(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [None, "", "multipart/form-data", "multipart/form-data; boundary=", 'multipart/form-data; boundary=""',
     "multipart/form-data; boundary=" + "b" * 201, "multipart/mixed; boundary=b", "application/octet-stream"],
)  # fmt: skip
def test_a_body_that_is_not_multipart_form_data_is_refused(content_type):
    with pytest.raises(Invalid, match="^400 Bad request - package is missing$"):
        multipart_boundary(content_type)


# --- the .nupkg ------------------------------------------------------------------------------


def write(tmp_path, data):
    path = tmp_path / "package.nupkg"
    path.write_bytes(data)
    return path


def zip_bytes(*names):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"<package/>")
    return buffer.getvalue()


def test_the_root_nuspec_is_read_from_the_nupkg(tmp_path):
    assert read_nuspec_bytes(write(tmp_path, nupkg()), 0) == nuspec().encode()
    assert read_nuspec_bytes(write(tmp_path, zip_bytes("A.NUSPEC", "sub/b.nuspec")), 0) == b"<package/>"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a valid zip"),
        (b"PK\x03\x04 truncated", "not a valid zip"),
        (zip_bytes("lib/a.dll"), "exactly one .nuspec at its root"),
        (zip_bytes("sub/a.nuspec"), "exactly one .nuspec at its root"),
        (zip_bytes("a.nuspec", "b.nuspec"), "exactly one .nuspec at its root"),
        (zip_bytes("a.nuspec", "../evil"), "invalid entry name"),
        (zip_bytes("a.nuspec", "/etc/passwd"), "invalid entry name"),
        (zip_bytes("a.nuspec", "lib\\..\\..\\evil"), "invalid entry name"),
        (zip_bytes("a.nuspec", "C:/evil"), "invalid entry name"),
        (zip_bytes("a.nuspec", "c:evil"), "invalid entry name"),
    ],
)
def test_bad_packages_are_refused(tmp_path, data, message):
    with pytest.raises(Invalid, match=message):
        read_nuspec_bytes(write(tmp_path, data), 0)


@pytest.mark.parametrize(
    "limit, value, max_size, message",
    [
        ("MAX_ENTRIES", 1, 0, "too many entries"),
        ("MAX_NUSPEC_SIZE", 10, 0, "the .nuspec is too large"),
        ("MAX_ENTRIES", 100, 1, "too large when extracted"),
    ],
)
def test_package_guards(tmp_path, monkeypatch, limit, value, max_size, message):
    monkeypatch.setattr(parsers, limit, value)
    with pytest.raises(Invalid, match=message):
        read_nuspec_bytes(write(tmp_path, nupkg()), max_size)


# --- the .nuspec -----------------------------------------------------------------------------


def test_the_nuspec_fields_are_parsed():
    spec = parse_nuspec(nuspec().encode())
    assert (spec.id, spec.version, spec.authors, spec.description) == ("Acme.Tools", "1.2.3", "Acme", "Tools for Acme")
    assert (spec.summary, spec.tags, spec.project_url) == ("A summary", "alpha beta", "https://example.com/project")
    assert spec.text == nuspec()
    assert spec.dependency_groups == [
        {"targetFramework": ".NETFramework4.5", "dependencies": [{"id": "Newtonsoft.Json", "range": "[12.0.1, )"}]},
        {"targetFramework": ".NETStandard2.0", "dependencies": []},
    ]
    expected = "Newtonsoft.Json:[12.0.1, ):.NETFramework4.5|::.NETStandard2.0"
    assert dependencies_string(spec.dependency_groups) == expected


def test_loose_dependencies_form_a_first_group_and_nameless_ones_are_dropped():
    data = b"""<package><metadata><id>A</id><version>1.0</version><authors>a</authors><description>d</description>
      <tags> x,y  z </tags><dependencies><group><dependency version="1"/></group><dependency id=" B " />
      </dependencies></metadata></package>"""
    spec = parse_nuspec(data)
    assert spec.tags == "x y z"
    assert spec.dependency_groups == [
        {"targetFramework": "", "dependencies": [{"id": "B", "range": ""}]},
        {"targetFramework": "", "dependencies": []},
    ]
    assert dependencies_string(spec.dependency_groups) == "B::"
    assert dependencies_string([]) == ""


def test_a_long_description_is_truncated_and_undecodable_text_replaced():
    spec = parse_nuspec(nuspec(description="d" * 5000).encode())
    assert spec.description == "d" * parsers.MAX_DESCRIPTION
    raw = b'<?xml version="1.0" encoding="iso-8859-1"?><package><metadata><id>A</id><version>1.0</version>'
    spec = parse_nuspec(raw + b"<title>\xe9t\xe9</title></metadata></package>", symbols=True)
    assert spec.title == "\u00e9t\u00e9"
    assert spec.text.endswith("<title>\ufffdt\ufffd</title></metadata></package>")


def test_symbol_packages_need_no_authors_or_description():
    spec = parse_nuspec(b"<package><metadata><id>A</id><version>1.0</version></metadata></package>", symbols=True)
    assert (spec.id, spec.authors, spec.description) == ("A", "", "")


def spec_with(**fields):
    body = "".join(f"<{key}>{value}</{key}>" for key, value in fields.items())
    return f"<package><metadata>{body}</metadata></package>".encode()


BASE = {"id": "A", "version": "1.0", "authors": "a", "description": "d"}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not xml", "not valid XML"),
        (b"", "not valid XML"),
        (b'<!DOCTYPE package [<!ENTITY x "y">]><package>&x;</package>', "not valid XML"),
        (b'<!DOCTYPE package SYSTEM "http://example.invalid/x.dtd"><package/>', "not valid XML"),
        (b"<metadata/>", "has no <package> root"),
        (b"<package/>", METADATA_MISSING),
        (spec_with(**{**BASE, "id": ""}), METADATA_MISSING),
        (spec_with(**{**BASE, "version": " "}), METADATA_MISSING),
        (spec_with(**{**BASE, "authors": ""}), METADATA_MISSING),
        (spec_with(**{**BASE, "description": ""}), METADATA_MISSING),
        (spec_with(**{**BASE, "id": "../A"}), "package_name is invalid"),
        (spec_with(**{**BASE, "id": "\u00c4"}), "package_name is invalid"),
        (spec_with(**{**BASE, "version": "latest"}), "package_version is invalid"),
        (spec_with(**{**BASE, "authors": "a" * 256}), "authors is too long"),
        (spec_with(**BASE, projectUrl="javascript:alert(1)"), "project_url is not a valid URL"),
        (spec_with(**BASE, licenseUrl="https://x/" + "a" * 250), "license_url is not a valid URL"),
        (spec_with(**BASE, iconUrl="https://x/a b"), "icon_url is not a valid URL"),
    ],
)
def test_bad_nuspecs_are_refused(data, message):
    with pytest.raises(Invalid, match=message.replace(".", r"\.")):
        parse_nuspec(data)


# --- format ----------------------------------------------------------------------------------


def test_ids_are_case_insensitive_and_versions_normalised():
    assert FORMAT.normalize_name("Acme.Tools") == "acme.tools"
    assert FORMAT.normalize_version("01.0-RC") == "1.0.0-rc"


def test_the_format_validates_ids_and_versions():
    assert FORMAT.validate_name("Acme.Tools") is None and FORMAT.validate_version("1.0.0.1") is None
    with pytest.raises(Invalid, match="^400 Bad request - package_name is invalid$"):
        FORMAT.validate_name("..")
    with pytest.raises(Invalid, match="^400 Bad request - package_version is invalid$"):
        FORMAT.validate_version("1")
    error = FORMAT.duplicate_error()
    assert isinstance(error, Conflict) and error.message.startswith("409 Conflict - A package with the same name")


# --- the v2 feed's OData parameters, search parameters, pushed file names ----------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("'Acme.Lib'", "Acme.Lib"), (" 'It''s' ", "It's"), ("''", ""), ("Acme", None), ("'open", None), (None, None)],
)
def test_odata_string_literals(value, expected):
    assert parsers.odata_string(value) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("tolower(Id) eq 'acme.lib'", ("acme.lib", None)),
        ("(tolower(Id) eq 'acme.lib') and (Version eq '1.0.0')", ("acme.lib", "1.0.0")),
        ("Id eq 'O''Brien' and Version eq '2.0'", ("O'Brien", "2.0")),
        ("IsLatestVersion", None),
        ("", None),
        ("Version eq '1.0'", None),
    ],
)
def test_odata_filter_names_an_id_and_maybe_a_version(expression, expected):
    assert parsers.odata_filter(expression) == expected


@pytest.mark.parametrize(("raw", "expected"), [(None, 20), ("", 20), ("0", 0), ("35", 35)])
def test_int_param_reads_whole_numbers(raw, expected):
    assert parsers.int_param(raw, "skip", 20, 0) == expected


@pytest.mark.parametrize("raw", ["-1", "ten", "1.5"])
def test_int_param_refuses_others(raw):
    with pytest.raises(Invalid, match="400 Bad request - skip is invalid"):
        parsers.int_param(raw, "skip", 20, 0)


@pytest.mark.parametrize("file_name", ["Acme.Lib.1.0.0.nupkg", "acme.lib.1.0.nupkg", "package.nupkg", "", "x.zip"])
def test_a_file_name_that_agrees_or_names_nothing_passes(file_name):
    assert parsers.check_file_name(file_name, parsers.Nuspec(id="Acme.Lib", version="1.0.0")) is None


@pytest.mark.parametrize("file_name", ["Other.1.0.0.nupkg", "Acme.Lib.2.0.0.nupkg"])
def test_a_file_name_naming_another_package_is_refused(file_name):
    with pytest.raises(Invalid, match="does not match the package id and version"):
        parsers.check_file_name(file_name, parsers.Nuspec(id="Acme.Lib", version="1.0.0"))
