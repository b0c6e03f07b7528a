"""Pure unit tests of RubyGems parsing and documents (packages_rubygems.parsers, renderers): names,
versions, the `.gem` and its YAML specification (safely loaded), the compact index and the
Ruby Marshal of the legacy index (read back with rubymarshal)."""

import gzip
import zlib

import pytest
from rubymarshal.reader import loads

from packages_rubygems import parsers, renderers
from registry.errors import Invalid
from tests.formats.rubygems.gems import gem, spec_yaml


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    settings.SPOOL_DIR = tmp_path / "spool"
    settings.SPOOL_DIR.mkdir()
    yield


def read(tmp_path, data):
    path = tmp_path / "x.gem"
    path.write_bytes(data)
    return parsers.read_gem(path, 10 * 1024 * 1024)


@pytest.mark.parametrize("name", ["hola", "rails", "net-http", "ruby_parser", "a.b", "_x1"])
def test_valid_names(name):
    assert parsers.valid_name(name)


@pytest.mark.parametrize("name", ["", "-", "..", "a b", "héllo", "a/b", "x" * 256, None])
def test_invalid_names(name):
    assert not parsers.valid_name(name)


def test_versions_prereleases_and_order():
    assert parsers.valid_version("1.0.0") and parsers.valid_version("1.0.0-x86_64-linux")
    assert not parsers.valid_version("v1") and not parsers.valid_version("1..0")
    assert parsers.is_prerelease("0.3.0.pre") and not parsers.is_prerelease("1.0-x86_64-linux")
    ordered = sorted(["1.10", "1.2", "1.2.a", "1.0"], key=renderers.version_key)
    assert ordered == ["1.0", "1.2.a", "1.2", "1.10"]


def test_a_gem_becomes_a_draft(tmp_path):
    draft = read(tmp_path, gem(dependencies=[("base", ">=", "1.0", "runtime"), ("devdep", "~>", "2.0", "development")]))
    assert (draft.name, draft.version, draft.platform) == ("hola", "0.1.0", "ruby")
    metadata = draft.metadata
    assert metadata["dependencies"] == [
        ["base", [[">=", "1.0"]], "runtime"],
        ["devdep", [["~>", "2.0"]], "development"],
    ]
    assert metadata["required_ruby_version"] == [[">=", "2.7"]]
    assert (metadata["licenses"], metadata["date"], metadata["summary"]) == (["MIT"], "2026-11-30", "hola summary")
    assert metadata["metadata"] == {"source_code_uri": "https://example.com/src"}


def test_a_platform_gem_is_its_own_version(tmp_path):
    draft = read(tmp_path, gem(platform="x86_64-linux"))
    assert (draft.version, draft.spec_version, parsers.gem_file_name(draft.name, draft.version)) == (
        "0.1.0-x86_64-linux",
        "0.1.0",
        "hola-0.1.0-x86_64-linux.gem",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a tar", "not a gem"),
        (gem(spec="--- just a string\n"), "not a Gem::Specification"),
        (gem(spec="--- !ruby/object:Gem::Specification\nname: [unclosed\n"), "not readable YAML"),
        (gem(spec=spec_yaml(name="bad name")), "invalid gem name"),
        (gem(spec=spec_yaml(version="1..0")), "invalid version"),
        (gem(dependencies=[("base", "=~", "1.0", "runtime")]), "invalid requirement of base"),
        (gem(dependencies=[("base", ">=", "1.0", "weird")]), "invalid dependency type"),
        (gem(spec="--- !!python/object/apply:os.system ['true']\n"), "not readable YAML"),
    ],
)
def test_bad_gems_are_refused(tmp_path, data, message):
    with pytest.raises(Invalid, match=message):
        read(tmp_path, data)


def test_a_gem_without_metadata_is_refused(tmp_path):
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("data.tar.gz")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(Invalid, match="no metadata.gz"):
        read(tmp_path, raw.getvalue())


def test_compact_index_files():
    metadata = {
        "dependencies": [["base", [[">=", "1.0"], ["<", "3"]], "runtime"], ["dev", [["~>", "2.0"]], "development"]],
        "required_ruby_version": [[">=", "2.7"]],
        "required_rubygems_version": [[">=", "0"]],
    }
    info = renderers.info_file([("0.1.0", metadata, "ab" * 32), ("0.2.0-java", {}, "cd" * 32)])
    assert info == f"---\n0.1.0 base:>= 1.0&< 3|checksum:{'ab' * 32},ruby:>= 2.7\n0.2.0-java |checksum:{'cd' * 32}\n"
    versions = renderers.versions_file({"hola": [("0.1.0", metadata, "ab" * 32)], "base": [("1.0", {}, "ef")]}, "T")
    lines = versions.splitlines()
    assert lines[:2] == ["created_at: T", "---"]
    assert lines[2].startswith("base 1.0 ") and lines[3].startswith("hola 0.1.0 ")
    import hashlib

    assert (
        lines[3].split()[-1] == hashlib.md5(renderers.info_file([("0.1.0", metadata, "ab" * 32)]).encode()).hexdigest()
    )
    assert renderers.names_file({"b", "a"}) == "---\na\nb\n"


def test_legacy_index_marshal_reads_back():
    rows = [
        ("hola", "0.1.0", {}),
        ("hola", "0.2.0", {}),
        ("hola", "0.3.0.pre", {}),
        ("hola", "0.2.0-java", {"platform": "java"}),
        ("base", "1.0", {}),
    ]
    latest = loads(gzip.decompress(renderers.specs_file(renderers.specs_rows(rows, "latest_specs"))))
    assert [(name, version.marshal_dump(), platform) for name, version, platform in latest] == [
        ("base", ["1.0"], "ruby"),
        ("hola", ["0.2.0"], "java"),
        ("hola", ["0.2.0"], "ruby"),
    ]
    pre = loads(gzip.decompress(renderers.specs_file(renderers.specs_rows(rows, "prerelease_specs"))))
    assert [(name, version.marshal_dump()) for name, version, _ in pre] == [("hola", ["0.3.0.pre"])]
    assert len(renderers.specs_rows(rows, "specs")) == 4


def test_quick_spec_is_a_user_defined_gem_specification():
    metadata = {"dependencies": [["base", [[">=", "1.0"]], "runtime"]], "summary": "S", "licenses": ["MIT"]}
    spec = loads(zlib.decompress(renderers.quick_spec("hola", "0.1.0", metadata)))
    assert spec.ruby_class_name == "Gem::Specification"
    fields = loads(spec._dump())  # noqa: SLF001
    assert fields[2] == "hola" and fields[3].marshal_dump() == ["0.1.0"] and fields[5] == "S"
    (dependency,) = fields[9]
    assert dependency.ruby_class_name == "Gem::Dependency" and dependency.attributes["@name"] == "base"
