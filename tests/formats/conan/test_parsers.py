"""Pure unit tests of Conan parsing and documents (packages_conan.parsers, renderers): references,
revisions, file paths, how files are named in storage, revision lists and searches."""

from datetime import UTC, datetime, timedelta

import pytest

from packages_conan import parsers, renderers
from packages_conan.format import ConanFormat
from registry.errors import Invalid
from registry.formats import DuplicateRule

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "recipe", "package_name", "text"),
    [
        ("hello/1.0/_/_", parsers.Recipe("hello", "1.0"), "hello", "hello/1.0"),
        (
            "hello/1/acme/stable",
            parsers.Recipe("hello", "1", "acme", "stable"),
            "hello@acme/stable",
            "hello/1@acme/stable",
        ),
        ("lib_x+y/2.0-rc.1/a_b/c.d", parsers.Recipe("lib_x+y", "2.0-rc.1", "a_b", "c.d"), "lib_x+y@a_b/c.d", None),
    ],
)
def test_recipes(path, recipe, package_name, text):
    parsed = parsers.parse_recipe(path)
    assert parsed == recipe
    assert parsed.package_name == package_name
    assert parsers.recipe_of(package_name, recipe.version) == recipe
    assert parsers.valid_package_name(package_name)
    if text:
        assert str(parsed) == text


@pytest.mark.parametrize(
    "path",
    ["h/1.0/_/_", "hello/1.0/_", "hello/1.0/acme/_", "hello/1.0/_/stable", "-x/1.0/_/_", "hello/.1/_/_",
     "hello/1.0/a b/c", "hello/1.0/acme/st@ble", "héllo/1.0/_/_", "hello/" + "1" * 102 + "/_/_", "a/b/c/d/e"],
)  # fmt: skip
def test_invalid_recipes(path):
    with pytest.raises(Invalid):
        parsers.parse_recipe(path)
    assert parsers.package_name_of(path) is None


def test_revisions_package_ids_and_paths():
    parsers.check_revision("89ff91b4eafc0981d1d15f1f8c7df250")
    parsers.check_package_id("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    for bad in ("", "../x", "a" * 65, "abc-def"):
        with pytest.raises(Invalid):
            parsers.check_revision(bad)
        with pytest.raises(Invalid):
            parsers.check_package_id(bad)
    for good in ("conanfile.py", "conanmanifest.txt", "conan_export.tgz", "conan_sources.txz", "metadata/logs/b.log"):
        parsers.check_file_path(good, parsers.RECIPE_FILES)
    for good in ("conaninfo.txt", "conan_package.tzst", "metadata/sign/x.sig"):
        parsers.check_file_path(good, parsers.PACKAGE_FILES)
    for bad, allowed in (
        ("conaninfo.txt", parsers.RECIPE_FILES),
        ("conanfile.py", parsers.PACKAGE_FILES),
        ("metadata", parsers.RECIPE_FILES),
        ("metadata/../x", parsers.RECIPE_FILES),
        ("metadata/a b", parsers.RECIPE_FILES),
        ("other.txt", parsers.RECIPE_FILES),
    ):
        with pytest.raises(Invalid):
            parsers.check_file_path(bad, allowed)


def test_stored_file_names_round_trip():
    assert parsers.split_file_name(parsers.recipe_file_name("r1", "metadata/a/b")) == ("r1", None, None, "metadata/a/b")
    assert parsers.split_file_name(parsers.package_file_name("r1", "p", "v", "conaninfo.txt")) == (
        "r1",
        "p",
        "v",
        "conaninfo.txt",
    )
    assert parsers.split_file_name("junk") is None


def test_metadata_files_may_be_replaced_other_files_not():
    fmt = ConanFormat()
    assert fmt.duplicate_rule_for(parsers.ConanDraft("hello", "1.0", path="metadata/x")) is DuplicateRule.ALLOW
    assert fmt.duplicate_rule_for(parsers.ConanDraft("hello", "1.0", path="conanfile.py")) is DuplicateRule.REJECT_FILE


def rows(*names):
    return [(name, T0 + timedelta(minutes=index), index) for index, name in enumerate(names)]


def test_a_revision_exists_once_its_manifest_is_there_newest_first():
    data = rows(
        "r1/export/conanfile.py",
        "r1/export/conanmanifest.txt",
        "r2/export/conanfile.py",  # r2 is still being uploaded
        "r1/package/p1/v1/conaninfo.txt",
        "r1/package/p1/v1/conanmanifest.txt",
        "r3/export/conanmanifest.txt",
        "r1/package/p1/v2/conanmanifest.txt",
        "r1/package/p2/v1/conanmanifest.txt",
    )
    assert [rrev for rrev, _ in renderers.recipe_revisions(data)] == ["r3", "r1"]
    assert [(pid, prev) for pid, prev, _ in renderers.package_revisions(data, "r1")] == [
        ("p2", "v1"),
        ("p1", "v2"),
        ("p1", "v1"),
    ]
    assert [prev for _, prev, _ in renderers.package_revisions(data, "r1", "p1")] == ["v2", "v1"]
    document = renderers.revision_list("hello/1.0", [("r3", T0)])
    assert document == {
        "reference": "hello/1.0",
        "revisions": [{"revision": "r3", "time": "2026-11-30T12:00:00+00:00"}],
    }
    assert renderers.file_list(data, "r1/export/") == {"files": {"conanfile.py": {}, "conanmanifest.txt": {}}}
    assert renderers.package_search(data, "r1", {"r1:p1:v2": "[settings]\n", "r1:p1:v1": "old"}) == {
        "p2": {"content": ""},
        "p1": {"content": "[settings]\n"},
    }


def test_recipe_search_patterns():
    references = ["hello/1.0", "hello/2.0@acme/stable", "other/1.0"]
    assert renderers.recipe_search(references, None) == {"results": references}
    assert renderers.recipe_search(references, "hello/*")["results"] == ["hello/1.0", "hello/2.0@acme/stable"]
    assert renderers.recipe_search(references, "HEL*")["results"] == ["hello/1.0", "hello/2.0@acme/stable"]
    assert renderers.recipe_search(references, "HEL*", ignorecase=False)["results"] == []
    assert renderers.recipe_search(references, "*@acme/*")["results"] == ["hello/2.0@acme/stable"]
