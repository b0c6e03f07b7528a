"""PyPI over HTTP: twine's upload form, the simple index (HTML and JSON), downloads, core
metadata; what is left in the database and in storage (query counts: tests/performance)."""

import hashlib
import io
import json
import re
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AccessLevel
from packages_pypi.models import Distribution
from registry import download_counts, formats
from registry.models import Blob, Package, PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.formats.pypi.dists import core_metadata, make_sdist, make_wheel, sdist_name, sha256, wheel_name
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


@pytest.fixture
def group():
    return GroupFactory(path="acme", name="Acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="tools", name="Tools")


@pytest.fixture
def developer(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return auth_headers(AccessTokenFactory(user=user).plaintext, "basic:__token__")


def upload_url(project):
    return f"/api/v4/projects/{project.pk}/packages/pypi"


def simple_url(project, name=""):
    return f"/api/v4/projects/{project.pk}/packages/pypi/simple/" + (f"{name}/" if name else "")


def form(name, version, data, file_name, **overrides):
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if file_name.endswith(".whl") else "sdist",
        "pyversion": "py3",
        "metadata_version": "2.1",
        "summary": "A tiny package",
        "requires_python": ">=3.8",
        "sha256_digest": sha256(data),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "content": SimpleUploadedFile(file_name, data, content_type="application/octet-stream"),
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def upload(client, project, headers, name="my-pkg", version="1.0.0", data=None, file_name=None, **overrides):
    if data is None:
        data = make_wheel(name, version)
    file_name = file_name or wheel_name(name, version)
    return client.post(upload_url(project), data=form(name, version, data, file_name, **overrides), **headers)


def body(response):
    return b"".join(response.streaming_content)


def blob_path(data):
    digest = sha256(data)
    return f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"


def assert_nothing_stored(blob_dir):
    assert Package.objects.count() == 0
    assert PackageVersion.objects.count() == 0
    assert PackageFile.objects.count() == 0
    assert Blob.objects.count() == 0
    assert Distribution.objects.count() == 0
    assert stored_objects(blob_dir) == []


# --- upload -------------------------------------------------------------------------------------


def test_twine_upload_stores_file_metadata_and_blob(client, project, developer, blob_dir):
    wheel = make_wheel("my-pkg", "1.0.0")
    response = upload(client, project, developer, data=wheel)
    assert response.status_code == 201, response.content
    assert response.json() == {"message": "201 Created"}

    version = PackageVersion.objects.select_related("package").get()
    assert (version.package.name, version.package.normalized_name, version.version) == ("my-pkg", "my-pkg", "1.0.0")
    assert version.package.format == "pypi"
    assert version.metadata["requires_python"] == ">=3.8"
    assert version.metadata["summary"] == "A tiny package"
    assert version.created_via == "personal"
    package_file = PackageFile.objects.get()
    assert package_file.file_name == "my_pkg-1.0.0-py3-none-any.whl"
    assert package_file.blob.sha256 == sha256(wheel)
    assert package_file.blob.size == len(wheel)
    distribution = Distribution.objects.get()
    assert distribution.package_file == package_file
    assert distribution.core_metadata.encode() == core_metadata("my-pkg", "1.0.0")
    assert distribution.core_metadata_sha256 == sha256(core_metadata("my-pkg", "1.0.0"))
    assert distribution.requires_python == ">=3.8"
    assert stored_objects(blob_dir) == [blob_path(wheel)]


def test_upload_also_accepted_with_trailing_slash_and_full_path(client, project, developer):
    url = f"/api/v4/projects/{project.full_path}/packages/pypi/"
    wheel = make_wheel("my-pkg", "1.0.0")
    response = client.post(url, data=form("my-pkg", "1.0.0", wheel, wheel_name("my-pkg", "1.0.0")), **developer)
    assert response.status_code == 201, response.content


def test_wheel_and_sdist_coexist_and_same_file_twice_is_400(client, project, developer, blob_dir):
    wheel = make_wheel("my-pkg", "1.0.0")
    sdist = make_sdist("my-pkg", "1.0.0")
    assert upload(client, project, developer, data=wheel).status_code == 201
    response = upload(client, project, developer, data=sdist, file_name=sdist_name("my-pkg", "1.0.0"))
    assert response.status_code == 201, response.content
    assert PackageVersion.objects.count() == 1
    assert PackageFile.objects.count() == 2

    again = upload(client, project, developer, data=wheel)
    assert again.status_code == 400
    assert again.json() == {"message": "400 Bad request - File already exists"}
    assert "already exist" in again.reason_phrase.lower()  # what twine --skip-existing looks for
    assert PackageFile.objects.count() == 2
    assert sorted(stored_objects(blob_dir)) == sorted([blob_path(wheel), blob_path(sdist)])


def test_other_spelling_of_a_name_is_the_same_package(client, project, developer):
    assert upload(client, project, developer, name="My_Pkg", version="1.0").status_code == 201
    response = upload(client, project, developer, name="my.pkg", version="1.1")
    assert response.status_code == 201, response.content
    package = Package.objects.get()
    assert (package.name, package.normalized_name) == ("My_Pkg", "my-pkg")
    assert sorted(package.versions.values_list("version", flat=True)) == ["1.0", "1.1"]


def test_equal_versions_are_one_release(client, project, developer):
    assert upload(client, project, developer, version="1.0").status_code == 201
    sdist = make_sdist("my-pkg", "1.0.0")
    response = upload(client, project, developer, version="1.0.0", data=sdist, file_name=sdist_name("my-pkg", "1.0.0"))
    assert response.status_code == 201
    assert PackageVersion.objects.count() == 1


def _traversal_wheel():
    return make_wheel("my-pkg", "1.0.0", extra=[("../../evil.py", b"print('x')")])


def _absolute_wheel():
    return make_wheel("my-pkg", "1.0.0", extra=[("/etc/evil", b"x")])


def _traversal_sdist():
    return make_sdist("my-pkg", "1.0.0", extra=[("my_pkg-1.0.0/../../evil.py", b"x")])


def _sdist_without_pkg_info():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("my_pkg-1.0.0/setup.py")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"#\n"))
    return buffer.getvalue()


def _sdist_with_symlink_out():
    buffer = io.BytesIO(make_sdist("my-pkg", "1.0.0"))
    out = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="r:gz") as source, tarfile.open(fileobj=out, mode="w:gz") as target:
        for member in source:
            target.addfile(member, source.extractfile(member))
        link = tarfile.TarInfo("my_pkg-1.0.0/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        target.addfile(link)
    return out.getvalue()


BAD_UPLOADS = {
    "wheel that is not a zip": dict(data=b"this is not a zip file at all"),
    "zip with traversal entries": dict(data=_traversal_wheel()),
    "zip with absolute entries": dict(data=_absolute_wheel()),
    "METADATA name disagrees": dict(data=make_wheel("my-pkg", "1.0.0", metadata=core_metadata("other-pkg", "1.0.0"))),
    "METADATA version disagrees": dict(data=make_wheel("my-pkg", "1.0.0", metadata=core_metadata("my-pkg", "2.0"))),
    "METADATA without Name": dict(data=make_wheel("my-pkg", "1.0.0", metadata=b"Metadata-Version: 2.1\n")),
    "METADATA not UTF-8": dict(
        data=make_wheel("my-pkg", "1.0.0", metadata=b"Name: my-pkg\nVersion: 1.0.0\nSummary: \xff\n")
    ),
    "empty METADATA": dict(data=make_wheel("my-pkg", "1.0.0", metadata=b"")),
    "sha256 mismatch": dict(sha256_digest="0" * 64),
    "malformed sha256": dict(sha256_digest="xyz"),
    "md5 mismatch": dict(md5_digest="0" * 32),
    "file name of another package": dict(file_name="other_pkg-1.0.0-py3-none-any.whl"),
    "file name of another version": dict(file_name="my_pkg-1.0.1-py3-none-any.whl"),
    "file name with odd characters": dict(file_name="my_pkg-1.0.0-py3-none-any;.whl"),
    "not a distribution": dict(file_name="my_pkg-1.0.0.exe"),
    "invalid version": dict(version="not a version"),
    "invalid name": dict(name="-bad-"),
    "invalid requires_python": dict(requires_python=">=>3"),
    "no content": dict(content=None),
    "other action": dict(**{":action": "submit"}),
    "sdist that is not gzip": dict(data=b"plain bytes", file_name="my_pkg-1.0.0.tar.gz"),
    "sdist with traversal": dict(data=_traversal_sdist(), file_name="my_pkg-1.0.0.tar.gz"),
    "sdist without PKG-INFO": dict(data=_sdist_without_pkg_info(), file_name="my_pkg-1.0.0.tar.gz"),
    "sdist with a link out": dict(data=_sdist_with_symlink_out(), file_name="my_pkg-1.0.0.tar.gz"),
    "wheel with two METADATA": dict(
        data=make_wheel("my-pkg", "1.0.0", extra=[("other-1.0.dist-info/METADATA", core_metadata("my-pkg", "1.0.0"))])
    ),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_refused_and_leaves_nothing(client, project, developer, blob_dir, case):
    overrides = dict(BAD_UPLOADS[case])
    data = overrides.pop("data", None)
    if data is None:
        data = make_wheel("my-pkg", "1.0.0")
    file_name = overrides.pop("file_name", None)
    if "sha256_digest" not in overrides:
        overrides["sha256_digest"] = sha256(data)
    response = upload(client, project, developer, data=data, file_name=file_name, **overrides)
    assert response.status_code == 400, (case, response.content)
    assert response.json()["message"].startswith("400 Bad request")
    assert_nothing_stored(blob_dir)


def test_a_path_in_the_part_file_name_is_reduced_to_its_base_name(client, project, developer, blob_dir):
    response = upload(client, project, developer, file_name="../../my_pkg-1.0.0-py3-none-any.whl")
    assert response.status_code == 201
    assert PackageFile.objects.get().file_name == "my_pkg-1.0.0-py3-none-any.whl"


def test_uploaded_file_streams_into_a_capped_spool_and_none_is_left(client, project, developer, monkeypatch, settings):
    """The file part goes straight from the body into a spool (registry.spool.SpoolUploadHandler,
    capped at the format's limit), never into memory or request.FILES; no spool outlives the
    request."""
    import os

    from django.core.files import uploadhandler

    from registry import spool as spool_module

    seen = []
    real_file_complete = spool_module.SpoolUploadHandler.file_complete

    def spy(handler, file_size):
        result = real_file_complete(handler, file_size)
        part = handler.parts[-1]
        seen.append((part.field_name, part.spool.size == file_size, handler.max_size))
        return result

    def no_memory(*args, **kwargs):
        raise AssertionError("an upload was read into memory")

    monkeypatch.setattr(spool_module.SpoolUploadHandler, "file_complete", spy)
    monkeypatch.setattr(uploadhandler.MemoryFileUploadHandler, "new_file", no_memory)
    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "new_file", no_memory)

    def spools():
        return set(os.listdir(settings.SPOOL_DIR)) if os.path.isdir(settings.SPOOL_DIR) else set()

    before = spools()
    assert upload(client, project, developer).status_code == 201
    assert seen == [("content", True, formats.get("pypi").max_file_size)]
    assert spools() == before


def test_file_over_the_size_limit_is_413(client, project, developer, blob_dir, settings):
    settings.PACKAGE_MAX_FILE_SIZE = {**settings.PACKAGE_MAX_FILE_SIZE, "pypi": 100}
    response = upload(client, project, developer)
    assert response.status_code == 413
    assert_nothing_stored(blob_dir)


def test_upload_needs_credentials_and_developer(client, project, blob_dir):
    anonymous = upload(client, project, {})
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Basic ")

    reporter = UserFactory()
    MembershipFactory(user=reporter, project=project, access_level=AccessLevel.REPORTER)
    token = AccessTokenFactory(user=reporter).plaintext
    assert upload(client, project, auth_headers(token, "basic:__token__")).status_code == 403

    deploy = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    assert upload(client, project, auth_headers(deploy.plaintext, f"basic:{deploy.username}")).status_code == 403

    wrong = auth_headers("glpat-not-a-real-token", "basic:__token__")
    assert upload(client, project, wrong).status_code == 401
    assert_nothing_stored(blob_dir)


def test_deploy_token_with_write_scope_uploads(client, project):
    deploy = DeployTokenFactory(project=project)
    response = upload(client, project, auth_headers(deploy.plaintext, f"basic:{deploy.username}"))
    assert response.status_code == 201
    assert PackageVersion.objects.get().created_via == "deploy"


# --- simple index -------------------------------------------------------------------------------


@pytest.fixture
def published(client, project, developer):
    wheel = make_wheel("My.Pkg", "1.0.0")
    sdist = make_sdist("My.Pkg", "1.0.0", metadata=core_metadata("My.Pkg", "1.0.0", requires_python="<4,>=3.8"))
    assert upload(client, project, developer, name="My.Pkg", data=wheel).status_code == 201
    response = upload(
        client,
        project,
        developer,
        name="My.Pkg",
        data=sdist,
        file_name=sdist_name("My.Pkg", "1.0.0"),
        requires_python="<4,>=3.8",
    )
    assert response.status_code == 201
    return {"wheel": wheel, "sdist": sdist}


def test_project_page_html_links_hashes_requires_python_and_core_metadata(client, project, developer, published):
    response = client.get(simple_url(project, "my-pkg"), HTTP_ACCEPT="text/html", **developer)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Vary"] == "Accept"
    html = response.content.decode()
    assert "<title>Links for My.Pkg</title>" in html
    anchors = re.findall(r"<a ([^>]*)>([^<]*)</a>", html)
    assert [text for _, text in anchors] == ["My_Pkg-1.0.0-py3-none-any.whl", "my_pkg-1.0.0.tar.gz"]
    wheel_attrs, sdist_attrs = anchors[0][0], anchors[1][0]
    wheel_sha = sha256(published["wheel"])
    wheel_url = (
        f"http://testserver/api/v4/projects/{project.pk}/packages/pypi/files/{wheel_sha}/My_Pkg-1.0.0-py3-none-any.whl"
    )
    assert f'href="{wheel_url}#sha256={wheel_sha}"' in wheel_attrs
    assert 'data-requires-python="&gt;=3.8"' in wheel_attrs
    metadata_sha = sha256(core_metadata("My.Pkg", "1.0.0"))
    assert f'data-dist-info-metadata="sha256={metadata_sha}"' in wheel_attrs
    assert f'data-core-metadata="sha256={metadata_sha}"' in wheel_attrs
    assert 'data-requires-python="&lt;4,&gt;=3.8"' in sdist_attrs
    assert "core-metadata" not in sdist_attrs  # sdist metadata is not promised to be static


@pytest.mark.parametrize("spelling", ["My.Pkg", "MY_PKG", "my--pkg"])
def test_non_normalized_names_are_served(client, project, developer, published, spelling):
    response = client.get(simple_url(project, spelling), **developer)
    assert response.status_code == 200
    assert "My_Pkg-1.0.0-py3-none-any.whl" in response.content.decode()


def test_project_page_json_follows_pep_691(client, project, developer, published):
    response = client.get(simple_url(project, "my-pkg"), HTTP_ACCEPT=PIP_ACCEPT, **developer)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    document = json.loads(response.content)
    assert document["meta"] == {"api-version": "1.1"}
    assert document["name"] == "my-pkg"
    assert document["versions"] == ["1.0.0"]
    wheel, sdist = document["files"]
    wheel_sha = sha256(published["wheel"])
    metadata_sha = sha256(core_metadata("My.Pkg", "1.0.0"))
    assert wheel == {
        "filename": "My_Pkg-1.0.0-py3-none-any.whl",
        "url": f"http://testserver/api/v4/projects/{project.pk}/packages/pypi/files/{wheel_sha}/My_Pkg-1.0.0-py3-none-any.whl",
        "hashes": {"sha256": wheel_sha},
        "requires-python": ">=3.8",
        "core-metadata": {"sha256": metadata_sha},
        "dist-info-metadata": {"sha256": metadata_sha},
        "yanked": False,
        "size": len(published["wheel"]),
        "upload-time": wheel["upload-time"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", wheel["upload-time"])
    assert sdist["core-metadata"] is False
    assert sdist["requires-python"] == "<4,>=3.8"


def test_accept_negotiation(client, project, developer, published):
    url = simple_url(project, "my-pkg")
    html = client.get(url, HTTP_ACCEPT="application/vnd.pypi.simple.v1+html", **developer)
    assert html["Content-Type"] == "application/vnd.pypi.simple.v1+html"
    latest = client.get(url, HTTP_ACCEPT="application/vnd.pypi.simple.latest+json", **developer)
    assert latest["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    default = client.get(url, **developer)
    assert default["Content-Type"] == "text/html; charset=utf-8"
    preferred_html = client.get(url, HTTP_ACCEPT="application/vnd.pypi.simple.v1+json;q=0.2, text/html", **developer)
    assert preferred_html["Content-Type"] == "text/html; charset=utf-8"


def test_index_page_lists_normalized_names_once(client, project, developer, published):
    assert upload(client, project, developer, name="my_pkg", version="2.0").status_code == 201
    assert upload(client, project, developer, name="zeta", version="0.1").status_code == 201
    response = client.get(simple_url(project), **developer)
    assert response.status_code == 200
    anchors = re.findall(r'<a href="([^"]*)">([^<]*)</a>', response.content.decode())
    base = f"http://testserver/api/v4/projects/{project.pk}/packages/pypi/simple"
    assert anchors == [(f"{base}/my-pkg/", "My.Pkg"), (f"{base}/zeta/", "zeta")]
    document = client.get(simple_url(project), HTTP_ACCEPT=PIP_ACCEPT, **developer).json()
    assert document == {"meta": {"api-version": "1.1"}, "projects": [{"name": "My.Pkg"}, {"name": "zeta"}]}


def test_index_page_links_use_the_external_url_not_the_host(client, project, developer, published, settings):
    """As every other document: PACKHOUSE_EXTERNAL_URL when set, never the request's Host (a
    page built for one Host must not be answered to another either)."""
    settings.ALLOWED_HOSTS = ["*"]
    settings.EXTERNAL_URL = "https://packages.example.com"
    for host in ("evil.example", "testserver"):
        page = client.get(simple_url(project), HTTP_HOST=host, **developer).content.decode()
        base = f"https://packages.example.com/api/v4/projects/{project.pk}/packages/pypi/simple"
        assert re.findall(r'<a href="([^"]*)">', page) == [f"{base}/my-pkg/"], host


def test_unknown_package_is_404(client, project, developer, published):
    response = client.get(simple_url(project, "nothing-here"), **developer)
    assert response.status_code == 404
    assert response.json() == {"message": "404 Package Not Found"}


def test_etag_and_304_and_new_upload_changes_the_document(client, project, developer, published):
    url = simple_url(project, "my-pkg")
    first = client.get(url, **developer)
    etag = first["ETag"]
    assert etag
    again = client.get(url, HTTP_IF_NONE_MATCH=etag, **developer)
    assert again.status_code == 304
    json_variant = client.get(url, HTTP_ACCEPT=PIP_ACCEPT, **developer)
    assert json_variant["ETag"] != etag

    assert upload(client, project, developer, name="My.Pkg", version="1.1").status_code == 201
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag, **developer)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert "1.1-py3-none-any.whl" in changed.content.decode()


def test_pull_permissions_on_the_index(client, project, published):
    anonymous = client.get(simple_url(project, "my-pkg"))
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Basic ")
    outsider = auth_headers(AccessTokenFactory().plaintext, "basic:__token__")
    assert client.get(simple_url(project, "my-pkg"), **outsider).status_code == 404
    deploy = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    reader = auth_headers(deploy.plaintext, f"basic:{deploy.username}")
    assert client.get(simple_url(project, "my-pkg"), **reader).status_code == 200


def test_deleted_version_disappears_and_can_be_published_again(client, project, developer, published):
    from registry import services

    wheel = published["wheel"]
    file_url = f"/api/v4/projects/{project.pk}/packages/pypi/files/{sha256(wheel)}/My_Pkg-1.0.0-py3-none-any.whl"
    services.mark_version_for_destruction(PackageVersion.objects.get())
    assert client.get(simple_url(project, "my-pkg"), **developer).status_code == 404
    assert client.get(file_url, **developer).status_code == 404
    assert client.get(file_url + ".metadata", **developer).status_code == 404
    assert upload(client, project, developer, name="My.Pkg", data=wheel).status_code == 201
    assert client.get(file_url, **developer).status_code == 200


def test_a_cached_project_page_is_answered_without_reading_versions_or_files(client, project, developer, published):
    """Whether a file can be installed is checked where the page is built: a cached page was built
    under the same epochs, which every status change of a version or a file bumps."""
    from registry import services

    url = simple_url(project, "my-pkg")
    rows = (PackageVersion._meta.db_table, PackageFile._meta.db_table)
    for accept in ("text/html", PIP_ACCEPT):
        assert client.get(url, HTTP_ACCEPT=accept, **developer).status_code == 200  # built and cached
        with CaptureQueriesContext(connection) as queries:
            again = client.get(url, HTTP_ACCEPT=accept, **developer)
        assert again.status_code == 200
        assert [q["sql"] for q in queries.captured_queries if any(table in q["sql"] for table in rows)] == []
        assert queries.captured_queries == []  # the packages' ids too are remembered under the epochs
    # both files marked for destruction, one at a time: new epochs each time, the page built again
    wheel, sdist = PackageFile.objects.order_by("pk")
    services.mark_file_for_destruction(wheel)
    assert "none-any.whl" not in client.get(url, HTTP_ACCEPT="text/html", **developer).content.decode()
    services.mark_file_for_destruction(sdist)
    for accept in ("text/html", PIP_ACCEPT):
        assert client.get(url, HTTP_ACCEPT=accept, **developer).status_code == 404


# --- files and core metadata ------------------------------------------------------------------


def test_download_by_sha256_and_file_name(client, project, developer, published):
    wheel = published["wheel"]
    url = f"/api/v4/projects/{project.pk}/packages/pypi/files/{sha256(wheel)}/My_Pkg-1.0.0-py3-none-any.whl"
    response = client.get(url, **developer)
    assert response.status_code == 200
    assert body(response) == wheel
    assert response["X-Checksum-SHA256"] == sha256(wheel)
    download_counts.flush()  # counted in Redis, written in batches
    assert PackageVersion.objects.get().download_count == 1

    wrong_sha = url.replace(sha256(wheel), sha256(b"other"))
    assert client.get(wrong_sha, **developer).status_code == 404
    assert client.get(url.replace(sha256(wheel), "nothex"), **developer).status_code == 404
    assert client.get(url).status_code == 401


def test_core_metadata_is_served_next_to_the_wheel(client, project, developer, published):
    wheel = published["wheel"]
    url = f"/api/v4/projects/{project.pk}/packages/pypi/files/{sha256(wheel)}/My_Pkg-1.0.0-py3-none-any.whl.metadata"
    response = client.get(url, **developer)
    assert response.status_code == 200
    assert response.content == core_metadata("My.Pkg", "1.0.0")
    assert hashlib.sha256(response.content).hexdigest() == sha256(core_metadata("My.Pkg", "1.0.0"))
    download_counts.flush()  # counted in Redis, written in batches
    assert PackageVersion.objects.get().download_count == 0


# --- group index ---------------------------------------------------------------------------------


def test_group_index_aggregates_pullable_projects_and_links_project_files(client, group, project, developer, published):
    sibling = ProjectFactory(group=group, path="sibling")
    sub = GroupFactory(parent=group, path="sub")
    nested = ProjectFactory(group=sub, path="nested")
    hidden = ProjectFactory(group=GroupFactory(path="elsewhere"), path="hidden")
    owner = UserFactory()
    for target in (sibling, nested, hidden):
        MembershipFactory(user=owner, project=target, access_level=AccessLevel.MAINTAINER)
    owner_headers = auth_headers(AccessTokenFactory(user=owner).plaintext, "basic:__token__")
    assert upload(client, nested, owner_headers, name="my-pkg", version="3.0").status_code == 201
    assert upload(client, hidden, owner_headers, name="my-pkg", version="9.0").status_code == 201
    assert upload(client, sibling, owner_headers, name="sibling-only", version="1.0").status_code == 201

    # The developer is a member of `project` only: sees its files, not the sibling's or nested.
    group_url = f"/api/v4/groups/{group.pk}/-/packages/pypi/simple/"
    mine = client.get(group_url + "my-pkg/", **developer)
    assert mine.status_code == 200
    assert re.findall(r">([^<]*\.(?:whl|tar\.gz))</a>", mine.content.decode()) == [
        "My_Pkg-1.0.0-py3-none-any.whl",
        "my_pkg-1.0.0.tar.gz",
    ]
    # The owner reaches sibling and nested (through the subgroup), never the other group.
    MembershipFactory(user=owner, group=group, access_level=AccessLevel.REPORTER)
    theirs = client.get(group_url + "my-pkg/", HTTP_ACCEPT=PIP_ACCEPT, **owner_headers).json()
    assert theirs["versions"] == ["1.0.0", "3.0"]
    urls = {f["filename"]: f["url"] for f in theirs["files"]}
    assert urls["my_pkg-3.0-py3-none-any.whl"].startswith(
        f"http://testserver/api/v4/projects/{nested.pk}/packages/pypi/files/"
    )
    index = client.get(f"/api/v4/groups/{group.full_path}/-/packages/pypi/simple", **owner_headers)
    assert re.findall(r'">([^<]*)</a>', index.content.decode()) == ["My.Pkg", "sibling-only"]

    # The file link from the group page downloads from the project route.
    file_url = urls["my_pkg-3.0-py3-none-any.whl"].removeprefix("http://testserver")
    assert client.get(file_url, **owner_headers).status_code == 200
    # Nobody publishes to a group.
    assert client.post(group_url, **owner_headers).status_code == 405


def test_a_group_page_follows_memberships_and_new_projects_without_reading_again_between(
    client, group, project, developer, published
):
    """The group page's packages (which projects' files the caller may pull) are read once per
    change of the caller's identity or of the name's packages, and follow each such change."""
    owner, reader = UserFactory(), UserFactory()
    owner_headers = auth_headers(AccessTokenFactory(user=owner).plaintext, "basic:__token__")
    reader_headers = auth_headers(AccessTokenFactory(user=reader).plaintext, "basic:__token__")
    sibling, later = ProjectFactory(group=group, path="sibling"), ProjectFactory(group=group, path="later")
    for target in (sibling, later):
        MembershipFactory(user=owner, project=target, access_level=AccessLevel.MAINTAINER)
    assert upload(client, sibling, owner_headers, name="my-pkg", version="2.0").status_code == 201
    in_project = MembershipFactory(user=reader, project=project, access_level=AccessLevel.REPORTER)
    url = f"/api/v4/groups/{group.pk}/-/packages/pypi/simple/my-pkg/"

    def versions():
        response = client.get(url, HTTP_ACCEPT=PIP_ACCEPT, **reader_headers)
        return response.json()["versions"] if response.status_code == 200 else response.status_code

    assert versions() == ["1.0.0"]
    with CaptureQueriesContext(connection) as queries:
        assert versions() == ["1.0.0"]
    assert [q["sql"] for q in queries.captured_queries if Package._meta.db_table in q["sql"]] == []
    in_sibling = MembershipFactory(user=reader, project=sibling, access_level=AccessLevel.REPORTER)
    assert versions() == ["1.0.0", "2.0"]  # a new membership: a new identity epoch
    MembershipFactory(user=reader, project=later, access_level=AccessLevel.REPORTER)
    assert versions() == ["1.0.0", "2.0"]
    assert upload(client, later, owner_headers, name="my-pkg", version="3.0").status_code == 201
    assert versions() == ["1.0.0", "2.0", "3.0"]  # a package of the name created: new package epochs
    in_sibling.delete()
    assert versions() == ["1.0.0", "3.0"]
    sibling.visibility = "public"
    sibling.save()
    assert versions() == ["1.0.0", "2.0", "3.0"]  # a project made public: a new identity epoch
    in_project.delete()
    assert versions() == ["2.0", "3.0"]


def test_group_files_route_serves_what_the_caller_may_pull(client, group, project, developer, published):
    """GET /groups/:id/-/packages/pypi/files/:sha256/:file_name: by file name and sha256 together,
    from any project below the group the caller may pull from."""
    wheel = published["wheel"]
    name = wheel_name("My.Pkg", "1.0.0")
    group_files = f"/api/v4/groups/{group.pk}/-/packages/pypi/files"
    response = client.get(f"{group_files}/{sha256(wheel)}/{name}", **developer)
    assert response.status_code == 200
    assert body(response) == wheel
    by_path = client.get(f"/api/v4/groups/{group.full_path}/-/packages/pypi/files/{sha256(wheel)}/{name}", **developer)
    assert by_path.status_code == 200
    metadata = client.get(f"{group_files}/{sha256(wheel)}/{name}.metadata", **developer)
    assert metadata.status_code == 200 and b"Name: My.Pkg" in metadata.content
    # The name and the digest must both match.
    assert client.get(f"{group_files}/{sha256(b'other')}/{name}", **developer).status_code == 404
    sdist = sdist_name("My.Pkg", "1.0.0")
    assert client.get(f"{group_files}/{sha256(wheel)}/{sdist}", **developer).status_code == 404
    # Whoever cannot pull from the project gets nothing through the group.
    stranger = auth_headers(AccessTokenFactory(user=UserFactory()).plaintext, "basic:__token__")
    assert client.get(f"{group_files}/{sha256(wheel)}/{name}", **stranger).status_code == 404
    assert client.get(f"{group_files}/{sha256(wheel)}/{name}").status_code == 401
    other = GroupFactory(path="elsewhere")
    MembershipFactory(user=UserFactory(), group=other, access_level=AccessLevel.OWNER)
    elsewhere = f"/api/v4/groups/{other.pk}/-/packages/pypi/files/{sha256(wheel)}/{name}"
    assert client.get(elsewhere, **developer).status_code == 404


# --- digests and what pip reads -------------------------------------------------------------


def test_a_wrong_blake2_digest_is_refused_and_nothing_is_stored(client, project, developer, blob_dir):
    response = upload(client, project, developer, blake2_256_digest="0" * 64)
    assert response.status_code == 400
    assert "blake2_256_digest mismatch" in response.content.decode()
    assert_nothing_stored(blob_dir)
    assert upload(client, project, developer, blake2_256_digest="not-hex").status_code == 400


def test_the_right_blake2_digest_is_accepted(client, project, developer):
    assert upload(client, project, developer).status_code == 201  # the form helper sends the right one


def test_requires_python_comes_from_the_files_metadata_not_the_form(client, project, developer):
    data = make_wheel("my-pkg", "1.0.0", metadata=core_metadata("my-pkg", "1.0.0", requires_python=">=3.10"))
    assert upload(client, project, developer, data=data, requires_python=">=2.7").status_code == 201
    assert Distribution.objects.get().requires_python == ">=3.10"
    page = client.get(simple_url(project, "my-pkg"), **developer).content.decode()
    assert 'data-requires-python="&gt;=3.10"' in page
