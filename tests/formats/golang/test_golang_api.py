"""Go modules over HTTP (upload, and the GOPROXY protocol at project and group level): what the
go command sees, and what is left in the database and storage."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import AccessLevel
from registry import tasks
from registry.models import CleanupPolicy, Package, PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.golang.modules import module_zip
from tests.helpers import stored_objects

pytestmark = pytest.mark.django_db
MODULE = "example.com/acme/greet"


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="gomods")


def token_for(project, level):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    return {"HTTP_AUTHORIZATION": f"Bearer {AccessTokenFactory(user=user).plaintext}"}


@pytest.fixture
def developer(project):
    return token_for(project, AccessLevel.DEVELOPER)


def proxy(project):
    return f"/api/v4/projects/{project.pk}/packages/go"


def upload(client, project, headers, data):
    return client.put(f"{proxy(project)}/upload", data=data, content_type="application/zip", **headers)


def get(client, url, headers):
    response = client.get(url, **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def test_upload_then_the_goproxy_protocol(client, project, developer, blob_dir):
    data = module_zip(version="v1.0.0")
    response = upload(client, project, developer, data)
    assert (response.status_code, response.content) == (201, b"201 Created - example.com/acme/greet@v1.0.0\n")
    upload(client, project, developer, module_zip(version="v1.1.0-rc.1"))
    base = f"{proxy(project)}/{MODULE}"

    assert get(client, f"{base}/@v/list", developer)[1] == b"v1.0.0\nv1.1.0-rc.1\n"
    info = json.loads(get(client, f"{base}/@v/v1.0.0.info", developer)[1])
    assert info["Version"] == "v1.0.0" and info["Time"].endswith("Z")
    assert json.loads(get(client, f"{base}/@latest", developer)[1])["Version"] == "v1.0.0"  # releases first
    assert get(client, f"{base}/@v/v1.0.0.mod", developer)[1] == b"module example.com/acme/greet\n\ngo 1.19\n"
    response, body = get(client, f"{base}/@v/v1.0.0.zip", developer)
    assert body == data and response["Content-Type"] == "application/zip"
    assert len(stored_objects(blob_dir)) == 3  # two zips, and their go.mod (the same bytes: one blob)
    for missing in ("@v/v9.0.0.info", "@v/v9.0.0.zip", "@v/bad.mod"):
        assert client.get(f"{base}/{missing}", **developer).status_code == 404
    for missing in ("example.com/acme/other/@v/list", "example.com/acme/@latest", "example.com/Acme/greet/@v/list"):
        response = client.get(f"{proxy(project)}/{missing}", **developer)
        assert response.status_code == 404 and response["Content-Type"].startswith("text/plain")


def test_case_encoded_module_paths(client, project, developer):
    upload(client, project, developer, module_zip("example.com/Acme/Greet"))
    assert get(client, f"{proxy(project)}/example.com/!acme/!greet/@v/list", developer)[1] == b"v1.0.0\n"
    assert client.get(f"{proxy(project)}/example.com/acme/greet/@v/list", **developer).status_code == 404
    assert Package.objects.get().name == "example.com/Acme/Greet"


def test_refusals_leave_nothing(client, project, developer, blob_dir, settings):
    response = upload(client, project, {}, module_zip())
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    reader = token_for(project, AccessLevel.REPORTER)
    assert upload(client, project, reader, module_zip()).status_code == 403
    response = upload(client, project, developer, module_zip(go_mod="module example.com/x\n"))
    assert response.status_code == 400 and b"go.mod declares module" in response.content
    settings.PACKAGE_MAX_FILE_SIZE = {"golang": 100}
    assert upload(client, project, developer, module_zip()).status_code == 413
    assert stored_objects(blob_dir) == [] and not Package.objects.exists()

    settings.PACKAGE_MAX_FILE_SIZE = {}
    assert upload(client, project, developer, module_zip()).status_code == 201
    before = stored_objects(blob_dir)
    response = upload(client, project, developer, module_zip(greeting="changed"))
    assert (
        response.status_code == 409 and response.content == b"409 Conflict - this module version is already uploaded\n"
    )
    assert stored_objects(blob_dir) == before


def test_a_cached_version_list_is_answered_without_reading_versions(client, project, developer):
    """Whether the module has a version is checked where the list is built: a cached list was
    built under the same epochs, which every upload and deletion bumps."""
    upload(client, project, developer, module_zip(version="v1.0.0"))
    url = f"{proxy(project)}/{MODULE}/@v/list"
    assert get(client, url, developer)[1] == b"v1.0.0\n"  # built and cached
    with CaptureQueriesContext(connection) as queries:
        assert get(client, url, developer)[1] == b"v1.0.0\n"
    assert [q["sql"] for q in queries.captured_queries if PackageVersion._meta.db_table in q["sql"]] == []
    maintainer = token_for(project, AccessLevel.MAINTAINER)
    only = PackageVersion.objects.get()
    assert client.delete(f"/api/v4/projects/{project.pk}/packages/{only.pk}", **maintainer).status_code == 204
    assert client.get(url, **developer).status_code == 404


def test_group_proxy_aggregates_what_the_caller_may_pull(client, group, project, developer):
    hidden = ProjectFactory(group=GroupFactory(path="sub", parent=group), path="hidden")
    upload(client, project, developer, module_zip(version="v1.0.0", greeting="one"))
    two = module_zip(version="v1.1.0", greeting="two")  # built once: a zip's entries carry the time
    upload(client, hidden, token_for(hidden, AccessLevel.DEVELOPER), two)
    base = f"/api/v4/groups/{group.pk}/-/packages/go/{MODULE}"
    assert get(client, f"{base}/@v/list", developer)[1] == b"v1.0.0\n"
    assert client.get(f"{base}/@v/v1.1.0.zip", **developer).status_code == 404
    hidden_reader = token_for(hidden, AccessLevel.REPORTER)  # a member of `hidden` only
    assert get(client, f"{base}/@v/list", hidden_reader)[1] == b"v1.1.0\n"
    assert get(client, f"{base}/@v/v1.1.0.zip", hidden_reader)[1] == two
    # nobody uploads to a group (no such route: the REST API's group resource answers)
    assert client.put(f"/api/v4/groups/{group.pk}/-/packages/go/upload", **developer).status_code in (404, 405)


def test_deletion_cleanup_api_and_pages(client, project, developer, settings):
    settings.BLOB_GRACE_SECONDS = 0
    maintainer = token_for(project, AccessLevel.MAINTAINER)
    for version in ("v1.0.0", "v1.1.0", "v1.2.0"):
        upload(client, project, developer, module_zip(version=version))
    first = PackageVersion.objects.get(version="v1.0.0")
    assert client.delete(f"/api/v4/projects/{project.pk}/packages/{first.pk}", **maintainer).status_code == 204
    assert get(client, f"{proxy(project)}/{MODULE}/@v/list", developer)[1] == b"v1.1.0\nv1.2.0\n"
    CleanupPolicy.objects.create(project=project, keep_n_versions=1)
    tasks.apply_cleanup_policy(project.pk)
    assert get(client, f"{proxy(project)}/{MODULE}/@v/list", developer)[1] == b"v1.2.0\n"

    listed = client.get(f"/api/v4/projects/{project.pk}/packages?package_type=golang", **developer).json()
    assert [(p["name"], p["version"], p["package_type"]) for p in listed] == [(MODULE, "v1.2.0", "golang")]
    member = UserFactory()
    MembershipFactory(user=member, project=project, access_level=AccessLevel.REPORTER)
    client.force_login(member)
    text = client.get(f"/{project.full_path}/-/packages/{listed[0]['id']}").content.decode().replace("&quot;", '"')
    assert f'export GOPROXY="http://testserver{proxy(project)}"' in text
    assert f"go get {MODULE}@v1.2.0" in text
