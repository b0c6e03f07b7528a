"""Pure unit tests of Cargo parsing (packages_cargo.parsers, renderers, format): crate names and
versions, index paths, the binary publish body, the metadata -> index entry, the `.crate` archive.

No database, no cache, no HTTP: spools go to a tmp_path SPOOL_DIR, and `_isolated_storage` replaces
tests/conftest.py's autouse fixture, which clears the cache.
"""

import io
import json
import struct
import tarfile

import pytest

from packages_cargo import parsers, renderers
from packages_cargo.format import CargoFormat
from registry.errors import Invalid, TooLarge
from tests.bombs import tar_gz_bomb
from tests.payloads import cargo_metadata, cargo_publish_body, crate


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    settings.SPOOL_DIR = tmp_path / "spool"
    settings.SPOOL_DIR.mkdir()
    yield


# --- names, versions, paths ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["serde", "a", "Serde_JSON", "foo-bar", "x" * 64, "a1", "tokio-util_2"])
def test_valid_names(name):
    assert parsers.valid_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        None,
        7,
        "1abc",
        "-abc",
        "_abc",
        "x" * 65,
        "foo.bar",
        "foo bar",
        "föo",
        "foo/bar",
        "foo\n",
        "con",
        "NUL",
        "lpt1",
    ],
)
def test_invalid_names(name):
    assert not parsers.valid_name(name)


@pytest.mark.parametrize("version", ["0.1.0", "1.0.0-alpha.1", "1.0.0+build.5", "1.2.3-rc.1+sha.abc", "10.20.30"])
def test_valid_versions(version):
    assert parsers.valid_version(version)


@pytest.mark.parametrize(
    "version", ["", "1", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "1.0.0 ", "1.0.0+", "١.0.0"]
)
def test_invalid_versions(version):
    assert not parsers.valid_version(version)


def test_names_are_one_ignoring_case_and_dash_or_underscore():
    fmt = CargoFormat()
    assert fmt.normalize_name("Foo_Bar") == fmt.normalize_name("foo-bar") == "foo-bar"
    assert fmt.normalize_version("1.0.0+build.1") == fmt.normalize_version("1.0.0+other") == "1.0.0"
    assert fmt.normalize_version("1.0.0-rc.1") == "1.0.0-rc.1"


@pytest.mark.parametrize(
    ("name", "path"),
    [("a", "1/a"), ("AB", "2/ab"), ("abc", "3/a/abc"), ("Serde", "se/rd/serde"), ("foo_bar", "fo/o_/foo_bar")],
)
def test_index_paths(name, path):
    assert parsers.index_path(name) == path


# --- the publish body ------------------------------------------------------------------------


def test_publish_body_is_read_in_order():
    body = cargo_publish_body("shout", "1.0.0")
    stream = io.BytesIO(body)
    document, crate_length, total = parsers.read_metadata(stream)
    assert (document["name"], document["vers"]) == ("shout", "1.0.0")
    assert total == len(body)
    assert stream.read() == crate("shout", "1.0.0")[:crate_length] and crate_length == len(crate("shout", "1.0.0"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "ended inside the length of the metadata"),
        (b"\x10\x00", "ended inside the length of the metadata"),
        (struct.pack("<I", 20) + b"{}", "ended inside the metadata"),
        (struct.pack("<I", 3) + b"{x}" + struct.pack("<I", 0), "not JSON"),
        (struct.pack("<I", 2) + b"{}", "ended inside the length of the crate"),
        (struct.pack("<I", parsers.MAX_METADATA_BYTES + 1), "metadata is over"),
    ],
)
def test_broken_publish_bodies(body, message):
    with pytest.raises(Invalid, match=message):
        parsers.read_metadata(io.BytesIO(body))


def test_crate_over_the_limit_is_too_large():
    parsers.check_crate_length(10, 10)
    parsers.check_crate_length(10**9, 0)  # no limit
    with pytest.raises(TooLarge):
        parsers.check_crate_length(11, 10)


# --- metadata -> index entry -----------------------------------------------------------------


def test_metadata_becomes_the_index_entry():
    metadata = cargo_metadata(
        "shout",
        "1.0.0",
        deps=[
            {
                "name": "helper",
                "version_req": "^1.2",
                "features": ["x"],
                "optional": True,
                "default_features": False,
                "target": "cfg(unix)",
                "kind": "normal",
                "registry": None,
                "explicit_name_in_toml": "renamed",
            },
            {"name": "tester", "version_req": "=0.1.0", "kind": "dev"},
        ],
        features={"default": ["std"], "std": [], "fancy": ["dep:renamed", "other?/x"]},
        links="z",
        rust_version="1.70",
        readme="a long README that is not kept",
    )
    draft = parsers.parse_metadata(metadata)
    assert (draft.name, draft.version) == ("shout", "1.0.0")
    assert "readme" not in draft.metadata and draft.metadata["license"] == "MIT"
    line = json.loads(renderers.index_entry("shout", "1.0.0", draft.metadata, "ab" * 32))
    assert line == {
        "name": "shout",
        "vers": "1.0.0",
        "deps": [
            {
                "name": "renamed",
                "req": "^1.2",
                "features": ["x"],
                "optional": True,
                "default_features": False,
                "target": "cfg(unix)",
                "kind": "normal",
                "registry": None,
                "package": "helper",
            },
            {
                "name": "tester",
                "req": "=0.1.0",
                "features": [],
                "optional": False,
                "default_features": True,
                "target": None,
                "kind": "dev",
                "registry": None,
            },
        ],
        "cksum": "ab" * 32,
        "features": {"default": ["std"], "std": []},
        "features2": {"fancy": ["dep:renamed", "other?/x"]},
        "v": 2,
        "yanked": False,
        "links": "z",
        "rust_version": "1.70",
    }
    yanked = {**draft.metadata, "withdrawn": {"reason": "", "by": "x", "at": "2026-01-01"}}  # set_withdrawn's mark
    assert json.loads(renderers.index_entry("shout", "1.0.0", yanked, "0"))["yanked"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "1bad"}, "invalid crate name `1bad`"),
        ({"name": None}, "`name` must be a string"),
        ({"vers": "1.0"}, "not a SemVer 2.0 version"),
        ({"deps": {}}, "`deps` must be a list"),
        ({"deps": ["x"]}, "each dependency must be an object"),
        ({"deps": [{"name": "a b", "version_req": "1"}]}, "invalid dependency name"),
        ({"deps": [{"name": "ok", "version_req": 1}]}, "`deps.version_req` must be a string"),
        ({"deps": [{"name": "ok", "version_req": "1", "kind": "weird"}]}, "invalid dependency kind"),
        ({"deps": [{"name": "ok", "version_req": "1", "optional": "yes"}]}, "must be true or false"),
        ({"features": []}, "`features` must be an object"),
        ({"features": {"a": "b"}}, "must be a list of strings"),
    ],
)
def test_bad_metadata_is_refused(change, message):
    with pytest.raises(Invalid, match=message):
        parsers.parse_metadata({**cargo_metadata("shout", "1.0.0"), **change})


def test_metadata_must_be_an_object():
    with pytest.raises(Invalid, match="JSON object"):
        parsers.parse_metadata([])


# --- index files -----------------------------------------------------------------------------


def test_index_file_lists_each_version_once_in_publish_order_and_only_its_spelling():
    rows = [
        ("foo-bar", "1.0.0", {}, "a" * 64),
        ("foo_bar", "9.0.0", {}, "b" * 64),  # the other index file
        ("foo-bar", "1.1.0", {}, "c" * 64),
        ("foo-bar", "1.0.0", {"withdrawn": {"reason": ""}}, "d" * 64),  # the same version in another project
    ]
    lines = [json.loads(line) for line in renderers.index_file(rows, "foo-bar").splitlines()]
    assert [(line["vers"], line["cksum"][0], line["yanked"]) for line in lines] == [
        ("1.1.0", "c", False),
        ("1.0.0", "d", True),
    ]
    assert renderers.index_file(rows, "foo_bar").count("\n") == 1
    assert renderers.index_file([], "foo-bar") == ""


def test_config_json():
    assert json.loads(renderers.config("D", "A", True)) == {"dl": "D", "api": "A", "auth-required": True}
    assert json.loads(renderers.config("D")) == {"dl": "D"}


# --- the crate archive -----------------------------------------------------------------------


def _spooled(tmp_path, data):
    path = tmp_path / "x.crate"
    path.write_bytes(data)
    return path


def test_a_good_crate_passes(tmp_path):
    parsers.check_crate(_spooled(tmp_path, crate("shout", "1.0.0+b")), "shout", "1.0.0+b", 10 * 1024 * 1024)


def test_directory_entries_are_fine(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name in ("shout-1.0.0", "shout-1.0.0/src"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        manifest = b'[package]\nname = "shout"\nversion = "1.0.0"\n'
        info = tarfile.TarInfo("shout-1.0.0/Cargo.toml")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    parsers.check_crate(_spooled(tmp_path, raw.getvalue()), "shout", "1.0.0", 10 * 1024 * 1024)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a tarball", "not a gzipped tar archive"),
        (crate("other", "1.0.0"), "is not under `shout-1.0.0/`"),
        (crate("shout", "1.0.0", members={"src/lib.rs": b""}), "has no `shout-1.0.0/Cargo.toml`"),
        (crate("shout", "1.0.0", members={"Cargo.toml": b"[package\n"}), "not valid TOML"),
        (
            crate("shout", "1.0.0", members={"Cargo.toml": b'[package]\nname = "shout"\nversion = "2.0.0"\n'}),
            "does not describe shout 1.0.0",
        ),
        (crate("shout", "1.0.0", members={"../evil": b"x", "Cargo.toml": b""}), "is not under"),
    ],
)
def test_bad_crates_are_refused(tmp_path, data, message):
    with pytest.raises(Invalid, match=message):
        parsers.check_crate(_spooled(tmp_path, data), "shout", "1.0.0", 10 * 1024 * 1024)


def test_a_crate_bomb_is_refused_within_budget(tmp_path):
    manifest = b'[package]\nname = "shout"\nversion = "1.0.0"\n'
    bomb = tar_gz_bomb(200 * 1024 * 1024, files={"shout-1.0.0/Cargo.toml": manifest})
    with pytest.raises(Invalid, match="exceeds the limit"):
        parsers.check_crate(_spooled(tmp_path, bomb), "shout", "1.0.0", 1024 * 1024)
