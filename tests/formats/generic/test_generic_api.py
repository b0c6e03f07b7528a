"""Generic packages over HTTP: what a curl user sees, and what is left in the database and storage."""

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AccessLevel
from registry import download_counts
from registry.models import Blob, DuplicateSetting, Package, PackageFile, PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers, stored_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def developer(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return auth_headers(AccessTokenFactory(user=user).plaintext)


def url(project, name="tool", version="1.2.3", file_name="tool.tar.gz", query=""):
    return f"/api/v4/projects/{project.pk}/packages/generic/{name}/{version}/{file_name}{query}"


def put(client, target, data, headers):
    return client.put(target, data=data, content_type="application/octet-stream", **headers)


def body(response):
    return b"".join(response.streaming_content)


def test_upload_then_download_is_byte_identical_with_checksums(client, project, developer, blob_dir):
    payload = bytes(range(256)) * 1000
    response = put(client, url(project), payload, developer)
    assert response.status_code == 201
    assert response.json() == {"message": "201 Created"}

    download = client.get(url(project), **developer)
    assert download.status_code == 200
    assert body(download) == payload
    assert download["X-Checksum-SHA256"] == hashlib.sha256(payload).hexdigest()
    assert download["Content-Disposition"] == 'attachment; filename="tool.tar.gz"'
    assert download["Content-Type"] == "application/octet-stream"

    head = client.head(url(project), **developer)
    assert head.status_code == 200
    assert int(head["Content-Length"]) == len(payload)

    sha256 = hashlib.sha256(payload).hexdigest()
    assert stored_objects(blob_dir) == [f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"]
    download_counts.flush()  # counted in Redis, written in batches
    version = PackageVersion.objects.get()
    assert (version.package.name, version.version, version.created_via) == ("tool", "1.2.3", "personal")
    assert version.download_count == 1  # the GET, not the HEAD


def test_select_package_file_answers_the_file_record(client, project, developer):
    # An older version first: the package's id and its versions' ids then differ.
    assert put(client, url(project).replace("1.2.3", "0.9.0"), b"old", developer).status_code == 201
    response = put(client, url(project, query="?select=package_file"), b"hello\n", developer)
    assert response.status_code == 201
    record = response.json()
    assert record["file_name"] == "tool.tar.gz"
    assert record["size"] == 6
    assert record["file_sha256"] == hashlib.sha256(b"hello\n").hexdigest()
    assert record["file_md5"] == hashlib.md5(b"hello\n").hexdigest()  # noqa: S324
    assert record["file_sha1"] == hashlib.sha1(b"hello\n").hexdigest()  # noqa: S324
    # Ids are the REST API's: the package (a name and a version) and the file there.
    listed = client.get(f"/api/v4/projects/{project.pk}/packages", **developer).json()
    assert record["package_id"] == next(p["id"] for p in listed if p["version"] == "1.2.3")
    files = client.get(f"/api/v4/projects/{project.pk}/packages/{record['package_id']}/package_files", **developer)
    assert [f["id"] for f in files.json()] == [record["id"]]
    assert files.json()[0]["package_id"] == record["package_id"]


def test_hidden_status_is_stored_and_still_downloadable(client, project, developer):
    assert put(client, url(project, query="?status=hidden"), b"x", developer).status_code == 201
    assert PackageVersion.objects.get().status == "hidden"
    assert client.get(url(project), **developer).status_code == 200
    bad = put(client, url(project, query="?status=bogus"), b"x", developer)
    assert bad.status_code == 400


def test_same_content_is_stored_once(client, project, developer, blob_dir):
    put(client, url(project, file_name="a.bin"), b"same", developer)
    put(client, url(project, name="other", file_name="b.bin"), b"same", developer)
    assert PackageFile.objects.count() == 2
    assert Blob.objects.count() == 1
    assert len(stored_objects(blob_dir)) == 1


def test_duplicates_are_allowed_by_default_and_the_newest_is_served(client, project, developer):
    assert put(client, url(project), b"first", developer).status_code == 201
    assert put(client, url(project), b"second", developer).status_code == 201
    assert PackageFile.objects.filter(file_name="tool.tar.gz").count() == 2
    assert body(client.get(url(project), **developer)) == b"second"


def test_duplicates_refused_by_project_setting_leave_nothing_behind(client, project, developer, blob_dir):
    DuplicateSetting.objects.create(project=project, format="generic", allowed=False)
    assert put(client, url(project), b"first", developer).status_code == 201
    response = put(client, url(project), b"second", developer)
    assert response.status_code == 409
    assert response.json() == {"message": "409 Duplicate package is not allowed"}
    assert PackageFile.objects.count() == 1
    assert Blob.objects.count() == 1
    assert len(stored_objects(blob_dir)) == 1
    assert list(blob_dir.joinpath("..").glob("spool*/*")) == []
    # Another file name in the same version is not a duplicate.
    assert put(client, url(project, file_name="other.bin"), b"second", developer).status_code == 201


def test_exception_regex_flips_the_duplicate_setting(client, project, developer):
    DuplicateSetting.objects.create(project=project, format="generic", allowed=False, exception_regex=r".*-SNAPSHOT")
    snapshot = url(project, version="1.0-SNAPSHOT")
    assert put(client, snapshot, b"a", developer).status_code == 201
    assert put(client, snapshot, b"b", developer).status_code == 201
    release = url(project, version="1.0")
    assert put(client, release, b"a", developer).status_code == 201
    assert put(client, release, b"b", developer).status_code == 409


def test_oversize_upload_is_413_and_stores_nothing(client, project, developer, settings, blob_dir):
    settings.PACKAGE_MAX_FILE_SIZE = {**settings.PACKAGE_MAX_FILE_SIZE, "generic": 1024}
    response = put(client, url(project), b"x" * 1025, developer)
    assert response.status_code == 413
    assert "too large" in response.json()["message"]
    assert put(client, url(project), b"x" * 1024, developer).status_code == 201
    assert PackageFile.objects.count() == 1
    assert len(stored_objects(blob_dir)) == 1


@pytest.mark.parametrize(
    ("name", "version", "file_name"),
    [
        ("..", "1.0", "f.bin"),
        ("tool", "..", "f.bin"),
        ("tool", "1..0", "f.bin"),
        ("tool", "1.0", ".."),
        ("tool", "1.0", "a/../f.bin"),
        ("tool", "1.0", "a/./f.bin"),
        ("tool", "1.0", "%2e%2e/f.bin"),
        ("tool%2F..%2Fother", "1.0", "f.bin"),
        ("tool", "1.0", "..%2F..%2Fetc%2Fpasswd"),
        ("tool", "1.0", "f%00.bin"),
        ("to%00ol", "1.0", "f.bin"),
        ("tool", "1.0", "~f.bin"),
        ("tool", "1.0", "f.bin@"),
        ("tool", "1.0", "sp%20ace.bin"),
        ("t" * 256, "1.0", "f.bin"),
        ("tool", "1" * 256, "f.bin"),
        ("tool", "1.0", "f" * 1025),
        ("tool/", "1.0", "f.bin"),
    ],
)
def test_traversal_and_invalid_names_are_refused_and_store_nothing(
    client, project, developer, blob_dir, name, version, file_name
):
    response = put(client, url(project, name, version, file_name), b"payload", developer)
    assert response.status_code in (400, 404)
    assert response.status_code != 500
    body = response.json()
    assert "message" in body or body == {"error": "404 Not Found"}  # the latter: no route has that path
    assert Package.objects.count() == 0
    assert stored_objects(blob_dir) == []


def test_sub_directories_in_file_names_are_kept(client, project, developer):
    target = url(project, file_name="linux/amd64/tool")
    assert put(client, target, b"elf", developer).status_code == 201
    assert PackageFile.objects.get().file_name == "linux/amd64/tool"
    assert body(client.get(target, **developer)) == b"elf"


def test_missing_file_is_404_in_gitlab_shape(client, project, developer):
    response = client.get(url(project), **developer)
    assert response.status_code == 404
    assert response.json() == {"message": "404 Package Not Found"}


def test_unwritable_storage_is_503_and_leaves_no_rows(client, project, developer, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the storage directory should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocker)}},
    }
    response = put(client, url(project), b"payload", developer)
    assert response.status_code == 503
    assert PackageFile.objects.count() == 0
    assert Blob.objects.count() == 0


def test_unreadable_storage_on_download_is_503_not_404(client, project, developer, blob_dir):
    assert put(client, url(project), b"payload", developer).status_code == 201
    for path in blob_dir.rglob("*"):
        if path.is_file():
            path.unlink()
    response = client.get(url(project), **developer)
    assert response.status_code == 503


def test_authentication_and_authorization_cost_a_bounded_number_of_queries(client, developer):
    root = GroupFactory()
    group = root
    for _ in range(6):  # a deep tree costs no more than a shallow one
        group = GroupFactory(parent=group)
    deep = ProjectFactory(group=group)
    user = UserFactory()
    MembershipFactory(user=user, group=root, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(AccessTokenFactory(user=user).plaintext)
    put(client, url(deep), b"x", headers)
    with CaptureQueriesContext(connection) as queries:
        response = client.head(url(deep), **headers)
    assert response.status_code == 200
    # token lookup, project lookup, effective access level, file lookup (+ last_used throttled).
    assert len(queries) <= 5, [q["sql"] for q in queries]


def test_x_accel_redirect_hands_the_transfer_to_nginx(client, project, developer, settings):
    assert put(client, url(project), b"served by nginx", developer).status_code == 201
    settings.X_ACCEL_REDIRECT_PREFIX = "/_storage/"
    response = client.get(url(project), **developer)
    sha256 = hashlib.sha256(b"served by nginx").hexdigest()
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_storage/blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"
    assert response.content == b""
    assert response["Content-Disposition"] == 'attachment; filename="tool.tar.gz"'
    assert response["X-Checksum-SHA256"] == sha256
