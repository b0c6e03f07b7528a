"""Pure unit tests of npm parsing (packages_npm.parsers, packages_npm.format): names, SemVer versions
and their order, dist-tags, SRI integrity, the publish document and the package tarball.

No database, no cache, no HTTP: spools go to a tmp_path SPOOL_DIR, and `_isolated_storage` replaces
tests/conftest.py's autouse fixture, which clears the cache (Redis when REDIS_URL is set).
"""

import base64
import hashlib
import json
import re
import tarfile
from pathlib import Path

import pytest

from packages_npm import parsers
from packages_npm.format import NpmFormat
from packages_npm.parsers import (
    clean_metadata,
    integrity_sha512_hex,
    parse_publish,
    read_tarball_manifest,
    scope_of,
    semver_key,
    tarball_name,
    valid_name,
    valid_new_name,
    valid_tag,
    valid_version,
)
from packages_npm.publish_body import read_publish_body
from registry.errors import Forbidden, Invalid, NotFound
from tests.formats.npm.npmdocs import publish_document, tarball


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    settings.SPOOL_DIR = tmp_path / "spool"
    settings.SPOOL_DIR.mkdir()
    yield


# --- names, versions, tags -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["left-pad", "@acme/left-pad", "a", "@a/b", "x" * 214, "-dash", "a.b_c", "0", "@0/0", "@~acme/pad"]
)
def test_valid_names(name):
    assert valid_name(name) is True


@pytest.mark.parametrize(
    "name",
    [
        "", None, 42, "Left-Pad", "@Acme/pad", ".hidden", "_private", "@acme", "@acme/", "@/pad", "@acme/.x",
        "acme/pad", "@a/b/c", "x" * 215, "@acme/" + "x" * 209, "föo", "foo bar", "foo\n", "foo\x00", "../foo",
        "@../foo", "@acme/..", "foo%2f", "foo@1.0.0",
    ],
)  # fmt: skip
def test_invalid_names(name):
    assert valid_name(name) is False


@pytest.mark.parametrize("name", ["~tilde", "a~b", "node_modules", "favicon.ico", "@acme/a~b", "@acme/node_modules"])
def test_names_npm_refuses_for_new_packages_are_refused_for_publishes_but_still_read(name):
    assert valid_new_name(name) is False
    assert valid_name(name) is True


def test_a_scope_may_hold_a_tilde_and_reserved_names_only_matter_after_it():
    assert valid_new_name("@ac~me/pad") is True
    assert valid_new_name("@node_modules/pad") is True


def test_scoped_names_keep_their_scope():
    assert scope_of("@acme/left-pad") == "acme"
    assert [scope_of(name) for name in ("left-pad", "@Acme/pad", "", None)] == [None, None, None, None]
    assert tarball_name("@acme/left-pad", "1.0.0") == "left-pad-1.0.0.tgz"
    assert tarball_name("left-pad", "1.0.0-rc.1") == "left-pad-1.0.0-rc.1.tgz"


@pytest.mark.parametrize(
    "version",
    ["0.0.0", "1.2.3", "1.0.0-alpha", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0--", "1.0.0+20130313144700",
     "1.0.0-beta+exp.sha.5114f85", "99999999999.0.0", "1.0.0-" + "a" * 249],
)  # fmt: skip
def test_valid_versions(version):
    assert valid_version(version) is True


@pytest.mark.parametrize(
    "version",
    ["", None, 1, "1", "1.0", "v1.0.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "1.0.0-a..b", " 1.0.0",
     "1.0.0 ", "1.0.0\n", "1.0.\uff10", "\u0661.0.0", "1.0.0-\u00e9", "1.0.0-" + "a" * 250, "../1.0.0"],
)  # fmt: skip
def test_invalid_versions(version):
    assert valid_version(version) is False


@pytest.mark.parametrize("tag, valid", [
    ("latest", True), ("next", True), ("beta-1", True), ("v1beta", True), ("x-ray", True), ("a" * 255, True),
    ("1.0.0", False), ("v1", False), ("1.0", False), ("v1.0", False), ("1", False), ("1.x", False),
    ("x", False), ("", False), (None, False), ("-x", False), (".x", False), ("a/b", False),
    ("a b", False), ("a" * 256, False), ("t\u00e1g", False), ("latest\n", False),
])  # fmt: skip
def test_dist_tags_are_url_safe_and_not_versions(tag, valid):
    assert valid_tag(tag) is valid


def test_semver_precedence_orders_pre_releases_below_releases():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "10.0.0"]  # fmt: skip
    assert sorted(reversed(ordered), key=semver_key) == ordered


def test_semver_order_ignores_build_metadata_and_puts_invalid_versions_first():
    assert semver_key("1.0.0+b")[:3] == semver_key("1.0.0")[:3]
    assert sorted(["1.0.0", "junk", "0.0.1-0"], key=semver_key) == ["junk", "0.0.1-0", "1.0.0"]


# --- integrity -------------------------------------------------------------------------------


def test_the_sha512_of_an_sri_string_is_decoded_to_hex():
    digest = hashlib.sha512(b"x").digest()
    sri = "sha512-" + base64.b64encode(digest).decode()
    assert integrity_sha512_hex(sri) == digest.hex()
    assert integrity_sha512_hex(f"sha1-AAAA {sri}?opt=1") == digest.hex()


@pytest.mark.parametrize("integrity", [None, 5, "", "sha1-AAAA", "sha256-abc= sha384-xyz"])
def test_no_sha512_in_the_integrity_gives_none(integrity):
    assert integrity_sha512_hex(integrity) is None


@pytest.mark.parametrize("integrity", ["sha512-not*base64", "sha512-abc", "sha512-\u00e9\u00e9\u00e9\u00e9"])
def test_a_malformed_sha512_integrity_is_refused(integrity):
    with pytest.raises(Invalid, match=r"^dist\.integrity is not valid\.$"):
        integrity_sha512_hex(integrity)


# --- format ----------------------------------------------------------------------------------


def test_the_format_validates_with_npm_messages():
    fmt = NpmFormat()
    assert fmt.validate_name("@acme/pad") is None and fmt.validate_version("1.0.0") is None
    with pytest.raises(Invalid, match=r"^Package name is invalid\.$"):
        fmt.validate_name("@Acme/pad")
    with pytest.raises(Invalid, match="must follow SemVer 2.0"):
        fmt.validate_version("1.0")
    duplicate = fmt.duplicate_error()
    assert isinstance(duplicate, Forbidden) and duplicate.message == "Package already exists."


def test_error_bodies_carry_error_without_the_status_prefix():
    response = NpmFormat().error_response(NotFound("404 Not found - x"), None)
    assert response.status_code == 404
    assert json.loads(response.content) == {"error": "Not found - x", "message": "404 Not found - x"}


def test_a_publish_body_hands_each_spool_out_once_and_cleans_up_the_rest(tmp_path):
    document = publish_document("pad", "1.0.0")
    document["_attachments"]["extra.tgz"] = {"data": base64.b64encode(b"extra").decode()}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with read_publish_body(path, 0, 0) as body:
        assert body.document["_attachments"]["extra.tgz"] == {"data": ""}
        spool = body.take("pad-1.0.0.tgz")
        assert body.take("pad-1.0.0.tgz") is None
        left = body.attachments["extra.tgz"].path
    assert body.attachments == {}
    assert not Path(left).exists()
    assert spool.read() == base64.b64decode(document["_attachments"]["pad-1.0.0.tgz"]["data"])
    spool.cleanup()


# --- metadata --------------------------------------------------------------------------------


def test_clean_metadata_keeps_known_keys_and_flags_install_scripts():
    manifest = {"description": "d", "dependencies": {"a": "^1"}, "scripts": {"test": "x"}, "_secret": 1}
    assert clean_metadata(manifest, {}) == {"description": "d", "dependencies": {"a": "^1"}}
    assert clean_metadata({}, {"scripts": {"postinstall": "x"}}) == {"hasInstallScript": True}
    assert clean_metadata({"hasInstallScript": True}, {"scripts": "nope"}) == {"hasInstallScript": True}
    assert clean_metadata({"hasInstallScript": "yes"}, {}) == {}


def test_clean_metadata_refuses_an_oversized_package_json():
    with pytest.raises(Invalid, match="package.json is too large"):
        clean_metadata({"description": "x" * parsers.MAX_METADATA_CHARS}, {})


# --- tarball ---------------------------------------------------------------------------------


def write(tmp_path, data):
    path = tmp_path / "package.tgz"
    path.write_bytes(data)
    return path


def member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_the_tarball_manifest_is_read(tmp_path):
    manifest = {"name": "@acme/pad", "version": "1.0.0", "description": "\u00e9t\u00e9"}
    data = tarball(manifest, {"package/lib/index.js": b"", "package/link": member("package/l", tarfile.SYMTYPE, "x")})
    assert read_tarball_manifest(write(tmp_path, data)) == manifest


@pytest.mark.parametrize(
    "members, message",
    [
        ({"package/index.js": b"x"}, "has no package/package.json"),
        ({"package/package.json": b"{}", "package/./package.json": b"{}"}, "package/package.json twice"),
        ({"package/package.json": b"{nope"}, "is not valid JSON"),
        ({"package/package.json": b"\xff\xfe"}, "is not valid JSON"),
        ({"package/package.json": b"[1]"}, "is not a JSON object"),
        ({"../evil": b""}, "unsafe member: '../evil'"),
    ]
    + [({name: b""}, "unsafe member") for name in ("/etc/passwd", "package/../../x", "package\\..\\x", "C:evil")]
    + [({"package/l": member("package/l", kind, target)}, "link out of the package")
       for kind, target in ((tarfile.SYMTYPE, "../../etc/passwd"), (tarfile.SYMTYPE, "/x"), (tarfile.LNKTYPE, "../x"))]
    + [({"package/s": member("package/s", kind)}, "special member") for kind in (tarfile.CHRTYPE, tarfile.FIFOTYPE)],
)  # fmt: skip
def test_hostile_or_broken_tarballs_are_refused(tmp_path, members, message):
    with pytest.raises(Invalid, match=message.replace(".", r"\.")):
        read_tarball_manifest(write(tmp_path, tarball(None, members=members)))


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 not gzip", b"\x1f\x8b\x08\x00garbage", b"\x1f\x8b"])
def test_not_gzip_tar_data_is_refused(tmp_path, data):
    with pytest.raises(Invalid, match="^Package tarball is not"):
        read_tarball_manifest(write(tmp_path, data))


def test_an_oversized_package_json_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(parsers, "MAX_MANIFEST_BYTES", 10)
    with pytest.raises(Invalid, match="package.json in the tarball is too large"):
        read_tarball_manifest(write(tmp_path, tarball({"name": "x", "version": "1.0.0"})))


# --- publish ---------------------------------------------------------------------------------


def publish(tmp_path, document, url_name="@acme/pad"):
    path = tmp_path / "body.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with read_publish_body(path, 0, 0) as body:
        draft, spool = parse_publish(body, url_name)
    spool.cleanup()
    return draft


def test_a_publish_document_becomes_a_draft(tmp_path):
    document = publish_document("@acme/pad", "1.0.0-rc.1", tag="next", description="pad", scripts={"install": "x"})
    document["dist-tags"].update({"beta": "1.0.0-rc.1"})
    draft = publish(tmp_path, document)
    assert (draft.name, draft.version, draft.dist_tags) == ("@acme/pad", "1.0.0-rc.1", ["next", "beta"])
    assert draft.metadata == {"description": "pad", "hasInstallScript": True}
    assert [f.file_name for f in draft.files] == ["pad-1.0.0-rc.1.tgz"]
    assert draft.files[0].spool.sha1 == document["versions"]["1.0.0-rc.1"]["dist"]["shasum"]


def test_without_a_dist_tag_the_version_is_tagged_latest(tmp_path):
    document = publish_document("pad", "2.0.0")
    document["dist-tags"] = {}
    assert publish(tmp_path, document, "pad").dist_tags == ["latest"]
    del document["dist-tags"]
    assert publish(tmp_path, document, "pad").dist_tags == ["latest"]


@pytest.mark.parametrize(
    "tags, message",
    [
        ({"latest": "1.0.0"}, "dist-tags.latest is '1.0.0': a publish may only tag the version it publishes (2.0.0)."),
        ({"1.0.0": "2.0.0"}, "Tag '1.0.0' is invalid"),
        ({"v2": "2.0.0"}, "Tag 'v2' is invalid"),
        (["latest"], "dist-tags is not an object."),
    ],
)
def test_dist_tags_of_a_publish_name_only_the_version_published(tmp_path, settings, tags, message):
    document = publish_document("pad", "2.0.0")
    document["dist-tags"] = tags
    with pytest.raises(Invalid, match=re.escape(message)):
        publish(tmp_path, document, "pad")
    assert list(settings.SPOOL_DIR.iterdir()) == []


def broken(change):
    document = publish_document("@acme/pad", "1.0.0")
    change(document, document["versions"]["1.0.0"], document["_attachments"]["@acme/pad-1.0.0.tgz"])
    return document


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d, v, a: d.update(name="@acme/other"), "does not match the URL"),
        (lambda d, v, a: d.update(versions={}), "Version is empty"),
        (lambda d, v, a: d.update(versions=[]), "Version is empty"),
        (lambda d, v, a: d.update(versions={"": v}), "Version is empty"),
        (lambda d, v, a: d.update(versions={"1.0": v}), "must follow SemVer 2.0"),
        (lambda d, v, a: d.update(versions={"1.0.0": "x"}), "Version manifest is invalid"),
        (lambda d, v, a: v.update(version="1.0.1"), "Version manifest does not match"),
        (lambda d, v, a: v.update(name="pad"), "Version manifest does not match"),
        (lambda d, v, a: d.pop("_attachments"), "Attachment data is empty"),
        (lambda d, v, a: d.update(_attachments={"pad-1.0.0.tgz": a}), "Attachment @acme/pad-1.0.0.tgz not given"),
        (lambda d, v, a: v.pop("dist"), "dist.shasum not given"),
        (lambda d, v, a: v["dist"].update(shasum=""), "dist.shasum not given"),
        (lambda d, v, a: v["dist"].update(shasum="0" * 40), "dist.shasum mismatch"),
        (lambda d, v, a: v["dist"].update(integrity="sha512-" + "A" * 88), "dist.integrity mismatch"),
        (lambda d, v, a: v["dist"].update(integrity="sha512-!"), "dist.integrity is not valid"),
        (lambda d, v, a: a.update(length=1), "Attachment length 1 does not match"),
        (lambda d, v, a: a.update(data=""), "Attachment data is empty"),
    ],
)
def test_bad_publish_documents_are_refused_and_leave_no_spool(tmp_path, settings, change, message):
    with pytest.raises(Invalid, match=message.replace(".", r"\.")):
        publish(tmp_path, broken(change))
    assert list(settings.SPOOL_DIR.iterdir()) == []


@pytest.mark.parametrize("url_name", ["@Acme/pad", "../pad"])
def test_an_invalid_name_is_refused_even_when_body_and_url_agree(tmp_path, url_name):
    document = publish_document(url_name, "1.0.0")
    with pytest.raises(Invalid, match=r"^Package name is invalid\.$"):
        publish(tmp_path, document, url_name)


def test_a_document_that_is_not_an_object_is_refused(tmp_path):
    with pytest.raises(Invalid, match=r"^Invalid publish document\.$"):
        publish(tmp_path, ["@acme/pad"])


def test_a_tarball_for_another_package_is_refused(tmp_path):
    data = tarball({"name": "@acme/other", "version": "1.0.0"})
    with pytest.raises(Invalid, match="package.json in the tarball does not match"):
        publish(tmp_path, publish_document("@acme/pad", "1.0.0", data))


def test_an_attachment_that_is_not_a_tarball_is_refused(tmp_path):
    data = b"just text"
    with pytest.raises(Invalid, match="not gzip-compressed"):
        publish(tmp_path, publish_document("@acme/pad", "1.0.0", data, manifest={"name": "@acme/pad"}))
