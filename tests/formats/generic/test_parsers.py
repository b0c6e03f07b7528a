"""Pure unit tests of the generic format (packages_generic.format, and the pure helper of its views):
package name, version and file path validation, normalisation, duplicate and error rules.

No database, no cache, no HTTP: `_isolated_storage` below replaces tests/conftest.py's autouse
fixture, which clears the cache (Redis when REDIS_URL is set).
"""

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.test import RequestFactory

from packages_generic.format import MAX_FILE_PATH, GenericFormat
from packages_generic.views import package_file_json
from registry.errors import Conflict, Forbidden, Invalid, Unauthenticated
from registry.formats import DuplicateRule, PackageDraft

FORMAT = GenericFormat()
NAME_INVALID = "400 Bad request - package_name is invalid"
VERSION_INVALID = "400 Bad request - package_version is invalid"
FILE_INVALID = "400 Bad request - file_name is invalid"


@pytest.fixture(autouse=True)
def _isolated_storage():
    """Nothing here stores blobs or caches anything."""
    yield


# --- package name ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tool", "a", "My.Tool_2+x-y", "0", "x" * 255, "...x", "a..b"])
def test_valid_names_are_accepted(name):
    assert FORMAT.validate_name(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "x" * 256,
        "a/b",
        "../etc",
        "a b",
        "@scope",
        "tool~",
        "tööl",
        "a\x00b",
        "a\tb",
        "\nabc",
    ],
)
def test_invalid_names_are_refused(name):
    with pytest.raises(Invalid, match=NAME_INVALID):
        FORMAT.validate_name(name)


def test_a_name_with_a_trailing_newline_is_refused():
    with pytest.raises(Invalid):
        FORMAT.validate_name("tool\n")


def test_names_and_versions_are_not_normalised():
    assert FORMAT.normalize_name("My.Tool") == "My.Tool"
    assert FORMAT.normalize_version("1.0.0-RC1") == "1.0.0-RC1"


# --- version ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2.3", "1", "1.0.0-rc1", "2024_01_02", "1.0+build.5", "v1", "x" * 255])
def test_valid_versions_are_accepted(version):
    assert FORMAT.validate_version(version) is None


@pytest.mark.parametrize(
    "version",
    ["", "1..0", "../1", "1/0", "1 0", "1.0\x00", "1.0\t", "x" * 256, "1.0~", "1.0@x", "1,0"],
)
def test_invalid_versions_are_refused(version):
    with pytest.raises(Invalid, match=VERSION_INVALID):
        FORMAT.validate_version(version)


def test_a_version_with_non_ascii_digits_is_refused():
    with pytest.raises(Invalid):
        FORMAT.validate_version("1.0.\uff10")


def test_a_version_with_a_trailing_newline_is_refused():
    with pytest.raises(Invalid):
        FORMAT.validate_version("1.0\n")


# --- file path -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file_path",
    [
        "tool.tar.gz",
        "sub/dir/tool.tar.gz",
        "a@b.txt",
        "a~b",
        "+x",
        "-x",
        ".hidden",
        "a..b",
        "x" * 255,
        "/".join(["d"] * 512),
    ],
)
def test_valid_file_paths_are_accepted(file_path):
    assert FORMAT.validate_file_path(file_path) is None


@pytest.mark.parametrize(
    "file_path",
    [
        "",
        None,
        "x" * (MAX_FILE_PATH + 1),
        "/abs.txt",
        "dir/",
        "a//b",
        ".",
        "..",
        "./a",
        "../a",
        "a/../b",
        "a/..",
        "a/.",
        "~a",
        "a~",
        "@a",
        "a@",
        "dir/@a",
        "a b",
        "a\\b",
        "..\\a",
        "tööl.txt",
        "a\x00b",
        "a\tb",
        "a\rb",
        "%2e%2e",
        "a:b",
    ],
)
def test_invalid_file_paths_are_refused(file_path):
    with pytest.raises(Invalid, match=FILE_INVALID):
        FORMAT.validate_file_path(file_path)


@pytest.mark.parametrize("file_path", ["tool.txt\n", "dir\n/tool.txt", "tool.", "...", "dir./a", "x" * 256, "t\u00f6"])
def test_a_file_path_with_a_newline_a_trailing_dot_or_an_overlong_name_is_refused(file_path):
    with pytest.raises(Invalid):
        FORMAT.validate_file_path(file_path)


# --- format rules ----------------------------------------------------------------------------


def test_duplicates_follow_the_project_setting():
    draft = PackageDraft(name="tool", version="1.0")
    assert FORMAT.name == "generic"
    assert FORMAT.duplicate_rule_for(draft) is DuplicateRule.PROJECT_SETTING
    error = FORMAT.duplicate_error()
    assert isinstance(error, Conflict)
    assert (error.status, error.message) == (409, "409 Duplicate package is not allowed")


def test_the_size_limit_is_declared_on_the_format_and_settings_override_it(settings):
    assert FORMAT.default_max_file_size == 5 * 1024**3
    settings.PACKAGE_MAX_FILE_SIZE = {"generic": 1234}
    assert FORMAT.max_file_size == 1234
    settings.PACKAGE_MAX_FILE_SIZE = {}
    assert FORMAT.max_file_size == 5 * 1024**3


def test_errors_are_gitlab_message_bodies():
    response = FORMAT.error_response(Forbidden(), None)
    assert response.status_code == 403
    assert json.loads(response.content) == {"message": "403 Forbidden"}
    assert "WWW-Authenticate" not in response


def test_a_401_carries_a_basic_challenge():
    response = FORMAT.error_response(Unauthenticated(), None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_package_file_json_describes_the_file():
    created = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    blob = SimpleNamespace(size=3, md5="m" * 32, sha1="s" * 40, sha256="h" * 64)
    package_file = SimpleNamespace(pk=7, version_id=11, created_at=created, blob=blob, file_name="tool.tar.gz")
    request = RequestFactory().get("/api/v4/projects/1/packages/generic/tool/1.0/tool.tar.gz")
    body = package_file_json(package_file, request)
    assert body == {
        "id": 7,
        "package_id": 11,
        "created_at": "2024-05-06T07:08:09+00:00",
        "updated_at": "2024-05-06T07:08:09+00:00",
        "size": 3,
        "file_store": 1,
        "file_md5": "m" * 32,
        "file_sha1": "s" * 40,
        "file_sha256": "h" * 64,
        "file_name": "tool.tar.gz",
        "file": {"url": "http://testserver/api/v4/projects/1/packages/generic/tool/1.0/tool.tar.gz"},
    }
