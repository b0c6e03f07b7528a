"""Pure unit tests of Maven parsing (packages_maven.parsers, packages_maven.format): repository
paths (release, SNAPSHOT and timestamped files, checksum files, artifact and plugin-group
metadata), XML bodies, checksum bodies, listed versions and the duplicate rules.

No database, no cache, no HTTP: `_isolated_storage` replaces tests/conftest.py's autouse fixture
(which clears the cache, Redis when REDIS_URL is set).
"""

import pytest

from packages_maven import parsers
from packages_maven.format import METADATA, VERSIONLESS, MavenFormat
from packages_maven.parsers import (
    MavenPath,
    artifact_coordinates,
    check_xml,
    listed_versions,
    parse_checksum,
    parse_path,
)
from registry.errors import Invalid
from registry.formats import DuplicateRule, FileDraft, PackageDraft

PATH_INVALID = "^400 Bad request - path is invalid$"
FILE_INVALID = "^400 Bad request - file_name is invalid$"
VERSION_INVALID = "^400 Bad request - version is invalid$"


@pytest.fixture(autouse=True)
def _isolated_storage():
    """Nothing here stores blobs or caches anything."""
    yield


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, name, version, file_name, base_name, checksum",
    [
        ("com/ex/my-app/1.0/my-app-1.0.jar", "com/ex/my-app", "1.0", "my-app-1.0.jar", "my-app-1.0.jar", None),
        ("com/example/my-app/1.0/my-app-1.0.pom.sha1", "com/example/my-app", "1.0", "my-app-1.0.pom.sha1",
         "my-app-1.0.pom", "sha1"),
        ("app/1.0/app-1.0.jar.md5", "app", "1.0", "app-1.0.jar.md5", "app-1.0.jar", "md5"),
        ("app/1.0/app-1.0.jar.sha256", "app", "1.0", "app-1.0.jar.sha256", "app-1.0.jar", "sha256"),
        ("app/1.0/app-1.0.jar.sha512", "app", "1.0", "app-1.0.jar.sha512", "app-1.0.jar", "sha512"),
        ("app/1.0/app-1.0.jar.asc", "app", "1.0", "app-1.0.jar.asc", "app-1.0.jar.asc", None),
        ("app/1.0/.sha1", "app", "1.0", ".sha1", ".sha1", None),
        ("com/ex/app/1.0-SNAPSHOT/app-1.0-20240102.030405-7.jar", "com/ex/app", "1.0-SNAPSHOT",
         "app-1.0-20240102.030405-7.jar", "app-1.0-20240102.030405-7.jar", None),
        ("com/ex/app/1.0-SNAPSHOT/maven-metadata.xml", "com/ex/app", "1.0-SNAPSHOT", METADATA, METADATA, None),
        ("com/ex/app/1.0-SNAPSHOT/maven-metadata.xml.md5", "com/ex/app", "1.0-SNAPSHOT", METADATA + ".md5",
         METADATA, "md5"),
        ("com/ex/app/maven-metadata.xml", "com/ex/app", VERSIONLESS, METADATA, METADATA, None),
        ("com/ex/app/maven-metadata.xml.sha1", "com/ex/app", VERSIONLESS, METADATA + ".sha1", METADATA, "sha1"),
        ("org/apache/maven/plugins/maven-metadata.xml", "org/apache/maven/plugins", VERSIONLESS, METADATA, METADATA,
         None),
        ("a_b/c.d/1.0_beta+2/x", "a_b/c.d", "1.0_beta+2", "x", "x", None),
    ],
)  # fmt: skip
def test_paths_are_split_into_name_version_and_file(raw, name, version, file_name, base_name, checksum):
    assert parse_path(raw) == MavenPath(name, version, file_name, base_name, checksum)


def test_only_metadata_outside_a_snapshot_directory_is_versionless():
    artifact = parse_path("com/ex/app/maven-metadata.xml")
    snapshot = parse_path("com/ex/app/1.0-SNAPSHOT/maven-metadata.xml")
    release = parse_path("com/ex/app/1.0/maven-metadata.xml")
    jar = parse_path("com/ex/app/1.0/app-1.0.jar")
    assert [p.versionless for p in (artifact, snapshot, release, jar)] == [True, False, True, False]
    assert [p.is_metadata for p in (artifact, snapshot, release, jar)] == [True, True, True, False]
    assert (release.name, release.version) == ("com/ex/app/1.0", VERSIONLESS)


def test_long_names_and_versions_up_to_their_limits_are_accepted():
    name = "/".join(["g" * 50] * 4) + "/" + "a" * 51
    assert len(name) == parsers.MAX_NAME
    assert parse_path(f"{name}/{'1' * 255}/{'f' * 5000}").name == name


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", PATH_INVALID),
        (None, PATH_INVALID),
        ("app-1.0.jar", PATH_INVALID),
        ("1.0/app-1.0.jar", PATH_INVALID),
        ("maven-metadata.xml", PATH_INVALID),
        ("/com/ex/app/1.0/a.jar", PATH_INVALID),
        ("com//app/1.0/a.jar", PATH_INVALID),
        ("com/../app/1.0/a.jar", PATH_INVALID),
        ("com/./app/1.0/a.jar", PATH_INVALID),
        ("../../etc/1.0/passwd", PATH_INVALID),
        ("com/e x/app/1.0/a.jar", PATH_INVALID),
        ("c\u00f6m/ex/app/1.0/a.jar", PATH_INVALID),
        ("com\\..\\x/app/1.0/a.jar", PATH_INVALID),
        ("com/ex\x00/app/1.0/a.jar", PATH_INVALID),
        ("/".join(["g" * 50] * 4) + "/" + "a" * 52 + "/1.0/a.jar", PATH_INVALID),
        ("com/ex/app/1.0/", FILE_INVALID),
        ("com/ex/app/1.0/.", FILE_INVALID),
        ("com/ex/app/1.0/..", FILE_INVALID),
        ("com/ex/app/1.0/a b.jar", FILE_INVALID),
        ("com/ex/app/1.0/a\\b.jar", FILE_INVALID),
        ("com/ex/app/1.0/\u00e4.jar", FILE_INVALID),
        ("com/ex/app/1.0/a\x00.jar", FILE_INVALID),
        ("com/ex/app/1.0/a\r.jar", FILE_INVALID),
        ("com/ex/app/1.0/" + "f" * 5001, FILE_INVALID),
        ("com/ex/app/1..0/a.jar", VERSION_INVALID),
        ("com/ex/app/1.0~/a.jar", VERSION_INVALID),
        ("com/ex/app/~metadata/a.jar", VERSION_INVALID),
        ("com/ex/app/1.\uff10/a.jar", VERSION_INVALID),
        ("com/ex/app/1 0/a.jar", VERSION_INVALID),
        ("com/ex/app/" + "1" * 256 + "/a.jar", VERSION_INVALID),
    ],
)
def test_bad_paths_are_refused(raw, message):
    with pytest.raises(Invalid, match=message):
        parse_path(raw)


@pytest.mark.parametrize("raw", ["com/ex/app/1.0/a.jar\n", "com/ex/app/1.0\n/a.jar", "com/ex\n/app/1.0/a.jar"])
def test_a_segment_ending_in_a_newline_is_refused(raw):
    with pytest.raises(Invalid):
        parse_path(raw)


@pytest.mark.parametrize(
    "name, coordinates",
    [("com/example/my-app", ("com.example", "my-app")), ("app", ("", "app")), ("a/b/c/d", ("a.b.c", "d"))],
)
def test_artifact_coordinates_come_from_the_name(name, coordinates):
    assert artifact_coordinates(name) == coordinates


# --- XML -------------------------------------------------------------------------------------

POM = b'<?xml version="1.0"?><project xmlns="http://maven.apache.org/POM/4.0.0"><version>1</version></project>'


def test_well_formed_xml_with_the_expected_root_is_accepted():
    assert check_xml(POM, "project", "pom").find("{http://maven.apache.org/POM/4.0.0}version").text == "1"
    assert check_xml("<metadata>\u00e9</metadata>".encode(), "metadata", "maven-metadata.xml").text == "\u00e9"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"<metadata/>", "pom must have a <project> root element"),
        (b"<project>", r"pom is not valid XML \(ParseError\)"),
        (b"", r"pom is not valid XML \(ParseError\)"),
        (b"\xff\xfe<project/>", "pom is not valid XML"),
        (b'<!DOCTYPE project [<!ENTITY x "y">]><project>&x;</project>', r"pom is not valid XML \(DTDForbidden\)"),
        (b'<!DOCTYPE p SYSTEM "file:///etc/passwd"><project/>', r"pom is not valid XML \(DTDForbidden\)"),
    ],
)
def test_bad_xml_is_refused(data, message):
    with pytest.raises(Invalid, match="^400 Bad request - " + message):
        check_xml(data, "project", "pom")


def test_oversized_xml_is_refused_unparsed(monkeypatch):
    monkeypatch.setattr(parsers, "MAX_XML_SIZE", len(POM) - 1)
    with pytest.raises(Invalid, match="pom is too large to be parsed"):
        check_xml(POM, "project", "pom")


METADATA_XML = b"""<metadata xmlns="http://maven.apache.org/METADATA/1.1.0">
  <groupId>com.ex</groupId><artifactId>app</artifactId>
  <versioning><latest>1.1</latest><release> 1.0 </release>
    <versions><version>1.0</version><version> 1.1 </version><other>9</other></versions></versioning></metadata>"""


def test_listed_versions_reads_versions_latest_and_release():
    assert listed_versions(METADATA_XML) == ({"1.0", "1.1"}, "1.1", "1.0")
    bare = b"<metadata><versioning><latest> </latest><versions/></versioning></metadata>"
    assert listed_versions(bare) == (set(), None, None)


@pytest.mark.parametrize(
    "data",
    [b"junk", b"<project/>", b"<metadata/>", b"<metadata><versioning/></metadata>", b"<!DOCTYPE m><metadata/>"],
)
def test_listed_versions_is_none_for_other_documents(data):
    assert listed_versions(data) is None


# --- checksums -------------------------------------------------------------------------------

SHA1 = "a9993e364706816aba3e25717850c26c9cd0d89d"


@pytest.mark.parametrize(
    "data, algorithm, digest",
    [
        (SHA1.encode(), "sha1", SHA1),
        (f"  {SHA1.upper()}\r\n".encode(), "sha1", SHA1),
        (f"{SHA1}  my-app-1.0.jar\n".encode(), "sha1", SHA1),
        (b"0" * 32, "md5", "0" * 32),
        (b"f" * 64, "sha256", "f" * 64),
        (b"1" * 128, "sha512", "1" * 128),
    ],
)
def test_checksum_bodies_give_the_lowercase_digest(data, algorithm, digest):
    assert parse_checksum(data, algorithm) == digest


@pytest.mark.parametrize(
    "data, algorithm",
    [
        (b"", "sha1"),
        (b"   \n", "sha1"),
        (SHA1[:-1].encode(), "sha1"),
        (SHA1.encode() + b"0", "sha1"),
        (SHA1.encode(), "md5"),
        (b"g" * 40, "sha1"),
        ("\u00e9".encode() * 20, "sha1"),
        (b"0" * 31 + b"\x00", "md5"),
    ],
)
def test_bad_checksum_bodies_are_refused(data, algorithm):
    with pytest.raises(Invalid, match="^400 Bad request - checksum is invalid$"):
        parse_checksum(data, algorithm)


# --- format ----------------------------------------------------------------------------------


def draft(version, *file_names):
    return PackageDraft(name="com/ex/app", version=version, files=[FileDraft(name, None) for name in file_names])


@pytest.mark.parametrize(
    "package_draft, rule",
    [
        (draft(VERSIONLESS, METADATA), DuplicateRule.ALLOW),
        (draft("1.0-SNAPSHOT", "app-1.0-20240102.030405-7.jar"), DuplicateRule.ALLOW),
        (draft("1.0", METADATA), DuplicateRule.ALLOW),
        (draft("1.0", "app-1.0.jar"), DuplicateRule.PROJECT_SETTING),
        (draft("1.0", METADATA, "app-1.0.pom"), DuplicateRule.PROJECT_SETTING),
        (draft("1.0-snapshot", "app.jar"), DuplicateRule.PROJECT_SETTING),
    ],
)
def test_metadata_and_snapshots_may_always_be_redeployed(package_draft, rule):
    assert MavenFormat().duplicate_rule_for(package_draft) is rule


@pytest.mark.parametrize("version", ["1.0", "1.0-SNAPSHOT", "1.0_b+2"])
def test_the_format_accepts_ascii_versions(version):
    assert MavenFormat().validate_version(version) is None


def test_the_format_accepts_the_versionless_marker_the_write_service_sees_for_metadata():
    # registry.services.publish validates every draft; parse_path never yields the marker from
    # a client's version segment (`~` is refused there).
    assert MavenFormat().validate_version(VERSIONLESS) is None
    with pytest.raises(Invalid):
        parse_path(f"com/ex/app/{VERSIONLESS}/app.jar")


@pytest.mark.parametrize("name", ["com/example/my-app", "app", "org/x_y/a.b-c"])
def test_the_format_accepts_path_names(name):
    assert MavenFormat().validate_name(name) is None


@pytest.mark.parametrize("name", ["", "com//app", "com/../app", "./app", "com/a b", "a" * 256])
def test_the_format_refuses_other_names(name):
    with pytest.raises(Invalid, match="package_name is invalid"):
        MavenFormat().validate_name(name)


@pytest.mark.parametrize("version", ["1.\uff10", "1..0", "", "1/0"])
def test_the_format_refuses_other_versions(version):
    with pytest.raises(Invalid, match="package_version is invalid"):
        MavenFormat().validate_version(version)
