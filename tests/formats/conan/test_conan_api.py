"""Conan's v2 API over HTTP: what the conan client sees, and what is left in the database and
storage. The real client drives the same endpoints in tests/clients/conan."""

import base64
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AccessLevel
from registry import tasks
from registry.models import CleanupPolicy, PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import stored_objects

pytestmark = pytest.mark.django_db

RREV = "89ff91b4eafc0981d1d15f1f8c7df250"
PID = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
PREV = "87c914ad8d9691c8ae94792af390eeb9"


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="cpp")


def bearer(project, level):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    return {"HTTP_AUTHORIZATION": f"Bearer {AccessTokenFactory(user=user).plaintext}"}


@pytest.fixture
def developer(project):
    return bearer(project, AccessLevel.DEVELOPER)


@pytest.fixture
def maintainer(project):
    return bearer(project, AccessLevel.MAINTAINER)


def v2(project, path=""):
    return f"/api/v4/projects/{project.pk}/packages/conan/v2/{path}"


def recipe_url(project, recipe="hello/1.0/_/_", rrev=RREV):
    return v2(project, f"conans/{recipe}/revisions/{rrev}")


def package_url(project, recipe="hello/1.0/_/_", rrev=RREV, pid=PID, prev=PREV):
    return f"{recipe_url(project, recipe, rrev)}/packages/{pid}/revisions/{prev}"


def put(client, url, data, headers, sha1=True):
    extra = {"HTTP_X_CHECKSUM_SHA1": hashlib.sha1(data).hexdigest()} if sha1 else {}  # noqa: S324
    return client.put(url, data=data, content_type="application/octet-stream", **headers, **extra)


def upload(client, project, headers, recipe="hello/1.0/_/_", rrev=RREV, prev=PREV, text=b"x"):
    """What `conan upload` sends for a recipe revision and one package revision."""
    for path, data in (("conanfile.py", b"class C: pass # " + text), ("conanmanifest.txt", b"manifest " + text)):
        assert put(client, f"{recipe_url(project, recipe, rrev)}/files/{path}", data, headers).status_code == 201
    for path, data in (
        ("conan_package.tgz", b"tgz " + text),
        ("conaninfo.txt", b"[settings]\nos=Linux\n"),
        ("conanmanifest.txt", b"pkg manifest " + text),
    ):
        url = f"{package_url(project, recipe, rrev, PID, prev)}/files/{path}"
        assert put(client, url, data, headers).status_code == 201


def test_ping_and_credentials(client, project, developer):
    ping = f"/api/v4/projects/{project.pk}/packages/conan/v1/ping"
    response = client.get(ping)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    response = client.get(ping, **developer)
    assert (response.status_code, response["X-Conan-Server-Capabilities"]) == (200, "revisions")

    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.REPORTER)
    token = AccessTokenFactory(user=user).plaintext
    basic = "Basic " + base64.b64encode(f"anyone:{token}".encode()).decode()
    response = client.get(v2(project, "users/authenticate"), HTTP_AUTHORIZATION=basic)
    assert (response.status_code, response.content.decode()) == (200, token)
    deploy = DeployTokenFactory(project=project)
    basic = "Basic " + base64.b64encode(f"{deploy.username}:{deploy.plaintext}".encode()).decode()
    assert client.get(v2(project, "users/authenticate"), HTTP_AUTHORIZATION=basic).content.decode() == deploy.plaintext
    wrong = "Basic " + base64.b64encode(b"anyone:glpat-wrong").decode()
    assert client.get(v2(project, "users/authenticate"), HTTP_AUTHORIZATION=wrong).status_code == 401

    project.visibility = "public"
    project.save()
    assert client.get(v2(project, "users/authenticate")).status_code == 401
    assert client.get(v2(project, "users/check_credentials")).status_code == 401
    response = client.get(v2(project, "users/check_credentials"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (response.status_code, response.content) == (200, b"ok")


def test_upload_then_revisions_files_and_downloads(client, project, developer, blob_dir):
    conans = v2(project, "conans/hello/1.0/_/_")
    assert client.get(f"{conans}/latest", **developer).status_code == 404
    upload(client, project, developer)

    latest = client.get(f"{conans}/latest", **developer)
    assert latest.status_code == 200 and latest["Content-Type"] == "application/json"
    assert latest.json()["revision"] == RREV
    revisions = client.get(f"{conans}/revisions", **developer).json()
    assert revisions["reference"] == "hello/1.0" and [r["revision"] for r in revisions["revisions"]] == [RREV]
    files = client.get(f"{recipe_url(project)}/files", **developer).json()
    assert files == {"files": {"conanfile.py": {}, "conanmanifest.txt": {}}}
    package = f"{recipe_url(project)}/packages/{PID}"
    assert client.get(f"{package}/latest", **developer).json()["revision"] == PREV
    assert [r["revision"] for r in client.get(f"{package}/revisions", **developer).json()["revisions"]] == [PREV]
    assert set(client.get(f"{package_url(project)}/files", **developer).json()["files"]) == {
        "conan_package.tgz",
        "conaninfo.txt",
        "conanmanifest.txt",
    }
    download = client.get(f"{package_url(project)}/files/conan_package.tgz", **developer)
    assert b"".join(download.streaming_content) == b"tgz x"
    assert client.get(f"{recipe_url(project)}/search", **developer).json() == {
        PID: {"content": "[settings]\nos=Linux\n"}
    }
    assert client.get(f"{conans}/search", **developer).json() == {PID: {"content": "[settings]\nos=Linux\n"}}
    search = client.get(v2(project, "conans/search?q=hel*"), **developer).json()
    assert search == {"results": ["hello/1.0"]}
    assert len(stored_objects(blob_dir)) == 5
    assert PackageVersion.objects.get().package.name == "hello"


def test_a_revision_file_is_never_replaced_but_an_identical_one_is_accepted(client, project, developer, blob_dir):
    upload(client, project, developer)
    before = (PackageFile.objects.count(), stored_objects(blob_dir))
    url = f"{recipe_url(project)}/files/conanfile.py"
    assert put(client, url, b"class C: pass # x", developer).status_code == 201  # conan's retry
    response = put(client, url, b"other content", developer)
    assert response.status_code == 409
    assert (PackageFile.objects.count(), stored_objects(blob_dir)) == before
    # metadata files may change
    for content in (b"log 1", b"log 2"):
        assert (
            put(client, f"{recipe_url(project)}/files/metadata/logs/build.log", content, developer).status_code == 201
        )
    log = client.get(f"{recipe_url(project)}/files/metadata/logs/build.log", **developer)
    assert b"".join(log.streaming_content) == b"log 2"


@pytest.mark.parametrize(
    ("url", "headers_extra", "status"),
    [
        ("conans/hello/1.0/_/_/revisions/{rrev}/files/evil.sh", {}, 400),
        ("conans/hello/1.0/_/_/revisions/{rrev}/files/metadata/../x", {}, 400),
        ("conans/hello/1.0/acme/_/revisions/{rrev}/files/conanfile.py", {}, 400),
        ("conans/h/1.0/_/_/revisions/{rrev}/files/conanfile.py", {}, 400),
        ("conans/hello/1.0/_/_/revisions/bad-rev/files/conanfile.py", {}, 400),
        ("conans/hello/1.0/_/_/revisions/{rrev}/files/conanfile.py", {"HTTP_X_CHECKSUM_SHA1": "0" * 40}, 400),
        ("conans/hello/1.0/_/_/revisions/{rrev}/packages/{pid}/revisions/{prev}/files/conaninfo.txt", {}, 400),
    ],
)
def test_bad_uploads_leave_nothing(client, project, developer, blob_dir, url, headers_extra, status):
    target = v2(project, url.format(rrev=RREV, pid=PID, prev=PREV))
    response = client.put(target, data=b"data", content_type="application/octet-stream", **developer, **headers_extra)
    assert response.status_code == status, response.content
    assert "message" in response.json()
    assert stored_objects(blob_dir) == [] and not PackageVersion.objects.exists()


def test_size_limit(client, project, developer, blob_dir, settings):
    settings.PACKAGE_MAX_FILE_SIZE = {"conan": 10}
    response = put(client, f"{recipe_url(project)}/files/conanfile.py", b"x" * 11, developer)
    assert response.status_code == 413
    assert stored_objects(blob_dir) == [] and not PackageVersion.objects.exists()
    assert put(client, f"{recipe_url(project)}/files/conanfile.py", b"x" * 10, developer).status_code == 201


def test_a_cached_revision_document_is_answered_without_reading_files(client, project, developer, maintainer):
    """Whether the recipe has its manifest is checked where the document is built: a cached one
    was built under the same epochs, which every upload and deletion bumps."""
    upload(client, project, developer)
    latest = f"{v2(project, 'conans/hello/1.0/_/_')}/latest"
    assert client.get(latest, **developer).json()["revision"] == RREV  # built and cached
    with CaptureQueriesContext(connection) as queries:
        assert client.get(latest, **developer).json()["revision"] == RREV
    assert [q["sql"] for q in queries.captured_queries if PackageFile._meta.db_table in q["sql"]] == []
    assert client.delete(recipe_url(project), **maintainer).status_code == 200
    assert client.get(latest, **developer).status_code == 404


def test_removing_revisions(client, project, developer, maintainer):
    upload(client, project, developer)
    newer = "0643d35d01763070994f2fbec1410e7a"
    upload(client, project, developer, rrev=newer, text=b"y")
    conans = v2(project, "conans/hello/1.0/_/_")
    assert client.get(f"{conans}/latest", **developer).json()["revision"] == newer

    assert client.delete(recipe_url(project, rrev=newer), **developer).status_code == 403
    assert client.delete(recipe_url(project, rrev=newer), **maintainer).status_code == 200
    assert client.get(f"{conans}/latest", **developer).json()["revision"] == RREV
    assert client.delete(recipe_url(project, rrev=newer), **maintainer).status_code == 404

    assert client.delete(package_url(project), **maintainer).status_code == 200
    assert client.get(f"{recipe_url(project)}/packages/{PID}/latest", **developer).status_code == 404
    assert client.get(f"{conans}/latest", **developer).status_code == 200  # the recipe stays
    assert client.delete(f"{recipe_url(project)}/packages", **maintainer).status_code == 404  # none left
    assert client.delete(recipe_url(project), **maintainer).status_code == 200
    assert client.get(f"{conans}/latest", **developer).status_code == 404
    assert PackageVersion.objects.get().status == "pending_destruction"  # nothing left of it


def test_user_and_channel_make_another_package_and_cleanup_applies(client, project, developer, maintainer, settings):
    settings.BLOB_GRACE_SECONDS = 0
    upload(client, project, developer)
    upload(client, project, developer, recipe="hello/1.1/_/_")
    upload(client, project, developer, recipe="hello/1.0/acme/stable")
    search = client.get(v2(project, "conans/search"), **developer).json()
    assert search == {"results": ["hello/1.0", "hello/1.1", "hello/1.0@acme/stable"]}
    revisions = client.get(v2(project, "conans/hello/1.0/acme/stable/revisions"), **developer).json()
    assert revisions["reference"] == "hello/1.0@acme/stable"

    CleanupPolicy.objects.create(project=project, keep_n_versions=1)
    tasks.apply_cleanup_policy(project.pk)
    assert client.get(v2(project, "conans/hello/1.0/_/_/latest"), **developer).status_code == 404
    assert client.get(v2(project, "conans/hello/1.1/_/_/latest"), **developer).status_code == 200
    assert client.get(v2(project, "conans/hello/1.0/acme/stable/latest"), **developer).status_code == 200
    # `DELETE conans/<recipe>`: every revision at once.
    assert client.delete(v2(project, "conans/hello/1.0/acme/stable"), **developer).status_code == 403
    assert client.delete(v2(project, "conans/hello/1.0/acme/stable"), **maintainer).status_code == 200
    assert client.get(v2(project, "conans/hello/1.0/acme/stable/latest"), **developer).status_code == 404


def test_packages_api_and_the_version_page_show_conan(client, project, developer):
    upload(client, project, developer, recipe="hello/1.0/acme/stable")
    listed = client.get(f"/api/v4/projects/{project.pk}/packages?package_type=conan", **developer).json()
    assert [(p["name"], p["version"], p["package_type"]) for p in listed] == [("hello@acme/stable", "1.0", "conan")]
    member = UserFactory()
    MembershipFactory(user=member, project=project, access_level=AccessLevel.REPORTER)
    client.force_login(member)
    text = client.get(f"/{project.full_path}/-/packages/{listed[0]['id']}").content.decode()
    assert f"conan remote add packhouse http://testserver/api/v4/projects/{project.pk}/packages/conan" in text
    assert "conan install --requires=hello/1.0@acme/stable -r packhouse" in text
