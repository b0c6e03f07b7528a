"""Pure unit tests of Go module parsing (packages_golang.parsers): module paths and their
case-encoding, versions and their order, `@latest`, the go.mod module directive and the module
zip as it is uploaded."""

import io
import zipfile

import pytest

from packages_golang import parsers
from registry.errors import Invalid
from tests.bombs import zip_with_members
from tests.formats.golang.modules import module_zip


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    settings.SPOOL_DIR = tmp_path / "spool"
    settings.SPOOL_DIR.mkdir()
    yield


@pytest.mark.parametrize(
    "path", ["example.com/acme/greet", "example.com/Acme/Greet", "golang.org/x/mod", "a.b/c/v2", "x.io/a_b~c"]
)
def test_valid_module_paths(path):
    assert parsers.valid_module_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "acme/greet",
        "Example.com/x",
        "example.com/",
        "example.com//x",
        "example.com/../x",
        "example.com/a b",
        "ex.com/é",
        "-x.com/a",
    ],
)
def test_invalid_module_paths(path):
    assert not parsers.valid_module_path(path)


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("example.com/Acme/Greet", "example.com/!acme/!greet"),
        ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
    ],
)
def test_case_encoding(path, escaped):
    assert parsers.escape(path) == escaped
    assert parsers.unescape(escaped) == path
    assert parsers.module_of(escaped) == path


@pytest.mark.parametrize("escaped", ["example.com/Acme", "example.com/!", "example.com/!1x", "example.com/!!a"])
def test_bad_case_encodings(escaped):
    assert parsers.unescape(escaped) is None and parsers.module_of(escaped) is None


def test_versions_order_and_latest():
    for good in ("v1.0.0", "v0.0.0-20260101000000-abcdefabcdef", "v2.0.0+incompatible", "v1.2.3-rc.1"):
        assert parsers.valid_version(good)
    for bad in ("1.0.0", "v1.0", "v01.0.0", "v1.0.0+build", "V1.0.0"):
        assert not parsers.valid_version(bad)
    versions = ["v1.10.0", "v1.2.0", "v1.2.0-rc.10", "v1.2.0-rc.2", "v1.2.0-alpha", "v0.9.0"]
    assert sorted(versions, key=parsers.version_key) == [
        "v0.9.0",
        "v1.2.0-alpha",
        "v1.2.0-rc.2",
        "v1.2.0-rc.10",
        "v1.2.0",
        "v1.10.0",
    ]
    assert parsers.latest(versions) == "v1.10.0"
    assert parsers.latest(["v1.0.0-rc.1", "v1.0.0-rc.2"]) == "v1.0.0-rc.2"
    assert parsers.latest([]) is None


def test_module_directive():
    assert parsers.module_directive("// x\nmodule example.com/a // comment\n\ngo 1.19\n") == "example.com/a"
    assert parsers.module_directive('module "example.com/q"\n') == "example.com/q"
    assert parsers.module_directive("go 1.19\n") is None


def read(tmp_path, data):
    path = tmp_path / "m.zip"
    path.write_bytes(data)
    return parsers.read_module_zip(path, 10 * 1024 * 1024)


def test_a_module_zip(tmp_path):
    module, version, go_mod = read(tmp_path, module_zip("example.com/Acme/Greet", "v1.2.3"))
    assert (module, version) == ("example.com/Acme/Greet", "v1.2.3")
    assert go_mod.startswith(b"module example.com/Acme/Greet\n")
    assert read(tmp_path, module_zip("example.com/acme/greet/v2", "v2.0.0"))[1] == "v2.0.0"


def _zip(members):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return raw.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not a zip archive"),
        (_zip({"go.mod": "module example.com/a\n"}), "must be under <module>@<version>/"),
        (_zip({"example.com/a@v1.0.0/go.mod": "module example.com/a\n", "other@v1/x.go": ""}), "is not under"),
        (_zip({"example.com/a@v1.0.0/../x": ""}), "is not under"),
        (_zip({"acme@v1.0.0/go.mod": "module acme\n"}), "invalid module path"),
        (_zip({"example.com/a@1.0.0/go.mod": "module example.com/a\n"}), "invalid version"),
        (_zip({"example.com/a@v1.0.0/a.go": "package a\n"}), "has no example.com/a@v1.0.0/go.mod"),
        (_zip({"example.com/a@v1.0.0/go.mod": "module example.com/b\n"}), "go.mod declares module 'example.com/b'"),
        (_zip({"example.com/a@v2.0.0/go.mod": "module example.com/a\n"}), r"needs a /v2 module path or \+incompatible"),
        (_zip({"example.com/a/v2@v3.0.0/go.mod": "module example.com/a/v2\n"}), "does not match the module path's /v2"),
    ],
)
def test_bad_module_zips(tmp_path, data, message):
    with pytest.raises(Invalid, match=message):
        read(tmp_path, data)


def test_a_zip_with_too_many_members_is_refused_before_reading(tmp_path):
    with pytest.raises(Invalid, match="members"):
        read(tmp_path, zip_with_members(100_001))
