"""Hostile input, generated: every upload endpoint gets random names, paths, bodies, archives and
headers. Never a 500, and nothing is ever written outside the blob store's `blobs/` tree."""

import io
import json
import tarfile
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
NASTY = st.sampled_from(
    ["..", ".", "%2e%2e", "%2F", "..%2F..%2Fetc", "%00", "a/../b", "~x", "@x", "x" * 300, "\u202e", "%ff%fe", "CON"]
)
SEGMENT = st.one_of(NASTY, st.text(min_size=0, max_size=40), st.from_regex(r"[A-Za-z0-9._+~@-]{1,20}", fullmatch=True))


@pytest.fixture
def target():
    project = ProjectFactory(group=GroupFactory(path="fuzz"), path="proj")
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.MAINTAINER)
    return project, auth_headers(AccessTokenFactory(user=user).plaintext)


def quote(segment):
    return "".join(c if c.isalnum() or c in "._-~@+%" else f"%{ord(c):02X}" if ord(c) < 128 else c for c in segment)


def assert_safe(response, blob_dir):
    assert response.status_code < 500, response.content[:300]
    assert all(name.startswith("blobs/") for name in stored_objects(blob_dir))


def zip_bytes(entries):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return raw.getvalue()


def tgz_bytes(entries):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


ENTRY_NAMES = st.one_of(
    st.sampled_from(
        [
            "../evil",
            "/abs/evil",
            "a/../../evil",
            "package/package.json",
            "x.dist-info/METADATA",
            "pkg.nuspec",
            "..\\evil",
            "package/../../../etc/passwd",
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1, max_size=30
    ).filter(lambda name: name.strip("/")),
)
XML_BOMBS = st.sampled_from(
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><project>&e;</project>',
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;">]><package><metadata><id>&c;</id></metadata></package>',
        b"<project><modelVersion>4.0.0</modelVersion>",
        b"\xff\xfe<\x00p\x00",
    ]
)
ARCHIVES = st.one_of(
    st.binary(max_size=200),
    st.lists(st.tuples(ENTRY_NAMES, st.one_of(st.binary(max_size=50), XML_BOMBS)), max_size=4).map(zip_bytes),
    st.lists(st.tuples(ENTRY_NAMES, st.binary(max_size=50)), max_size=4).map(tgz_bytes),
    XML_BOMBS,
)


@FUZZ
@given(name=SEGMENT, version=SEGMENT, file_name=SEGMENT, body=st.binary(max_size=64))
def test_generic_put(client, target, blob_dir, name, version, file_name, body):
    project, headers = target
    url = f"/api/v4/projects/{project.pk}/packages/generic/{quote(name)}/{quote(version)}/{quote(file_name)}"
    assert_safe(client.put(url, data=body, content_type="application/octet-stream", **headers), blob_dir)


@FUZZ
@given(path=st.lists(SEGMENT, min_size=1, max_size=6), body=ARCHIVES)
def test_maven_put(client, target, blob_dir, path, body):
    project, headers = target
    url = f"/api/v4/projects/{project.pk}/packages/maven/" + "/".join(quote(p) for p in path)
    assert_safe(client.put(url, data=body, content_type="application/octet-stream", **headers), blob_dir)


@FUZZ
@given(
    name=SEGMENT,
    document=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["name", "versions", "_attachments", "dist-tags", "_id"]),
            st.one_of(
                st.text(max_size=20),
                st.dictionaries(st.text(max_size=10), st.text(max_size=10)),
                st.integers(),
                st.none(),
            ),
            max_size=5,
        ).map(lambda d: json.dumps(d).encode()),
    ),
)
def test_npm_publish(client, target, blob_dir, name, document):
    project, headers = target
    url = f"/api/v4/projects/{project.pk}/packages/npm/{quote(name)}"
    assert_safe(client.put(url, data=document, content_type="application/json", **headers), blob_dir)


@FUZZ
@given(
    name=st.one_of(NASTY, st.text(max_size=30)),
    version=st.one_of(NASTY, st.text(max_size=20)),
    file_name=st.one_of(NASTY, st.text(max_size=40), st.sampled_from(["x-1.0-py3-none-any.whl", "x-1.0.tar.gz"])),
    content=ARCHIVES,
)
def test_pypi_upload(client, target, blob_dir, name, version, file_name, content):
    project, headers = target
    boundary = "fuzzboundary7MA4YWxkTrZu0gW"
    fields = {":action": "file_upload", "name": name, "version": version, "filetype": "bdist_wheel"}
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode("utf-8", "replace")
        for key, value in fields.items()
    ]
    disposition = f'form-data; name="content"; filename="{file_name}"'.encode("utf-8", "replace")
    parts.append(
        b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + content + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    response = client.post(
        f"/api/v4/projects/{project.pk}/packages/pypi",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        **headers,
    )
    assert_safe(response, blob_dir)


@FUZZ
@given(
    header=st.sampled_from(
        ["HTTP_PRIVATE_TOKEN", "HTTP_AUTHORIZATION", "HTTP_JOB_TOKEN", "HTTP_DEPLOY_TOKEN", "HTTP_X_NUGET_APIKEY"]
    ),
    value=st.one_of(st.text(max_size=100), st.just("Basic " + "A" * 20000), st.just("glpat-" + "x" * 10000)),
)
def test_credentials_of_any_shape(client, target, blob_dir, header, value):
    project, _ = target
    response = client.get(f"/api/v4/projects/{project.pk}/packages/generic/a/1/f", **{header: value})
    assert response.status_code in (401, 404, 429)


@FUZZ
@given(body=ARCHIVES, file_name=st.one_of(NASTY, st.text(max_size=40), st.just("x.1.0.0.nupkg")))
def test_nuget_push(client, target, blob_dir, body, file_name):
    from tests.formats.nuget.nupkg import multipart

    project, headers = target
    data, content_type = multipart(body, file_name=file_name or "x")
    response = client.put(
        f"/api/v4/projects/{project.pk}/packages/nuget/", data=data, content_type=content_type, **headers
    )
    assert_safe(response, blob_dir)
