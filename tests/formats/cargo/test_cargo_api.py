"""Cargo over HTTP (the sparse registry protocol): what cargo sees, and what is left in the
database and storage. The real cargo drives the same endpoints in tests/clients/cargo."""

import base64
import hashlib
import json
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from accounts.roles import AccessLevel
from registry import tasks
from registry.models import CleanupPolicy, Package, PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import stored_objects
from tests.payloads import cargo_metadata, cargo_publish_body, crate

pytestmark = pytest.mark.django_db


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="crates")


def token_for(project, level):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    return {"HTTP_AUTHORIZATION": AccessTokenFactory(user=user).plaintext}  # as cargo sends it


@pytest.fixture
def developer(project):
    return token_for(project, AccessLevel.DEVELOPER)


@pytest.fixture
def maintainer(project):
    return token_for(project, AccessLevel.MAINTAINER)


def base(project):
    return f"/api/v4/projects/{project.pk}/packages/cargo"


def publish(client, project, headers, name="shout", version="1.0.0", body=None):
    data = body if body is not None else cargo_publish_body(name, version)
    return client.put(
        f"{base(project)}/api/v1/crates/new", data=data, content_type="application/octet-stream", **headers
    )


def index_lines(client, project, headers, path="sh/ou/shout"):
    response = client.get(f"{base(project)}/index/{path}", **headers)
    assert response.status_code == 200, response.content
    return [json.loads(line) for line in response.content.decode().splitlines()]


def errors(response):
    return [error["detail"] for error in response.json()["errors"]]


def test_config_json_says_where_to_download_and_publish_and_whether_to_authenticate(client, project, developer):
    response = client.get(f"{base(project)}/index/config.json")
    assert response.status_code == 401  # cargo retries with its token after this
    assert response["WWW-Authenticate"].startswith("Basic")
    response = client.get(f"{base(project)}/index/config.json", **developer)
    assert response.status_code == 200
    url = f"http://testserver{base(project)}"
    assert response.json() == {"dl": f"{url}/api/v1/crates", "api": url, "auth-required": True}

    project.visibility = "public"
    project.save()
    assert client.get(f"{base(project)}/index/config.json").json() == {"dl": f"{url}/api/v1/crates", "api": url}


def test_group_config_has_no_api_and_downloads_by_checksum(client, group, project, developer):
    response = client.get(f"/api/v4/groups/{group.pk}/-/packages/cargo/index/config.json", **developer)
    assert response.status_code == 200
    assert response.json() == {
        "dl": f"http://testserver/api/v4/groups/{group.pk}/-/packages/cargo/dl/{{crate}}/{{version}}/{{sha256-checksum}}",
        "auth-required": True,
    }


def test_publish_then_index_and_download(client, project, developer, blob_dir):
    response = publish(client, project, developer)
    assert response.status_code == 200, response.content
    assert response.json() == {"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}}
    data = crate("shout", "1.0.0")
    sha256 = hashlib.sha256(data).hexdigest()
    (line,) = index_lines(client, project, developer)
    assert line == {
        "name": "shout",
        "vers": "1.0.0",
        "deps": [],
        "cksum": sha256,
        "features": {},
        "yanked": False,
        "links": None,
    }
    download = client.get(f"{base(project)}/api/v1/crates/shout/1.0.0/download", **developer)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == data
    assert stored_objects(blob_dir) == [f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"]
    version = PackageVersion.objects.get()
    assert (version.package.name, version.version, version.metadata["license"]) == ("shout", "1.0.0", "MIT")
    assert version.files.get().file_name == "shout-1.0.0.crate"

    # Cached answers are revalidated with the ETag cargo sends back.
    first = client.get(f"{base(project)}/index/sh/ou/shout", **developer)
    assert (
        client.get(f"{base(project)}/index/sh/ou/shout", HTTP_IF_NONE_MATCH=first["ETag"], **developer).status_code
        == 304
    )


@pytest.mark.parametrize(
    "path",
    ["no/pe/nope", "3/s/shout", "sh/ou/shou", "Sh/Ou/Shout", "sh/ou/Shout", "2/sh/shout", "1/s", "sh/ou/sh.ut"],
)
def test_index_paths_that_do_not_name_a_published_crate_are_404(client, project, developer, path):
    publish(client, project, developer)
    response = client.get(f"{base(project)}/index/{path}", **developer)
    assert response.status_code == 404


def test_index_prefixes_by_name_length(client, project, developer):
    for name in ("a", "ab", "abcd-ef"):
        assert publish(client, project, developer, name=name).status_code == 200
    assert index_lines(client, project, developer, "1/a")[0]["name"] == "a"
    assert index_lines(client, project, developer, "2/ab")[0]["name"] == "ab"
    assert index_lines(client, project, developer, "ab/cd/abcd-ef")[0]["name"] == "abcd-ef"


def test_republishing_a_version_is_refused_yanked_or_not(client, project, developer, maintainer, blob_dir):
    assert publish(client, project, developer).status_code == 200
    before = stored_objects(blob_dir)
    for body in (
        cargo_publish_body("shout", "1.0.0", crate_bytes=crate("shout", "1.0.0", lib_rs="// changed\n")),
        cargo_publish_body("shout", "1.0.0+other"),
    ):
        response = publish(client, project, developer, body=body)
        assert response.status_code == 409
        assert errors(response) == ["crate version is already uploaded"]
    yank = client.delete(f"{base(project)}/api/v1/crates/shout/1.0.0/yank", **maintainer)
    assert yank.status_code == 200
    assert publish(client, project, developer).status_code == 409
    assert stored_objects(blob_dir) == before
    assert PackageVersion.objects.count() == 1


def test_one_spelling_per_crate(client, project, developer):
    assert publish(client, project, developer, name="foo-bar").status_code == 200
    for other in ("foo_bar", "Foo-Bar"):
        response = publish(client, project, developer, name=other, version="2.0.0")
        assert response.status_code == 409
        assert errors(response) == ["crate was previously named `foo-bar`"]
    assert list(PackageVersion.objects.values_list("package__name", "version")) == [("foo-bar", "1.0.0")]
    # Once the old spelling has no versions left, the new one takes the name.
    PackageVersion.objects.update(status="pending_destruction")
    assert publish(client, project, developer, name="Foo_Bar", version="2.0.0").status_code == 200
    assert Package.objects.get().name == "Foo_Bar"
    assert index_lines(client, project, developer, "fo/o_/foo_bar")[0]["name"] == "Foo_Bar"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (cargo_publish_body("1bad", "1.0.0", crate_bytes=b""), "invalid crate name `1bad`"),
        (cargo_publish_body("shout", "1.0", crate_bytes=b""), "not a SemVer 2.0 version"),
        (cargo_publish_body("shout", "1.0.0", crate_bytes=crate("other", "1.0.0")), "not under `shout-1.0.0/`"),
        (cargo_publish_body("shout", "1.0.0", crate_bytes=b"junk"), "not a gzipped tar archive"),
        (cargo_publish_body("shout", "1.0.0")[:-10], "length is not the lengths it announces"),
        (cargo_publish_body("shout", "1.0.0") + b"extra", "length is not the lengths it announces"),
        (b"\x05\x00\x00\x00[1,2]\x00\x00\x00\x00", "must be a JSON object"),
    ],
)
def test_bad_publishes_leave_nothing(client, project, developer, blob_dir, body, message):
    response = publish(client, project, developer, body=body)
    assert response.status_code == 400
    assert message in errors(response)[0]
    assert stored_objects(blob_dir) == []
    assert not Package.objects.exists()


def test_size_limit(client, project, developer, blob_dir, settings):
    noise = base64.b64encode(random.Random(1).randbytes(30_000)).decode()  # inflates less than 10x
    data = crate("shout", "1.0.0", lib_rs=f"// {noise}\n")
    body = cargo_publish_body("shout", "1.0.0", crate_bytes=data)
    settings.PACKAGE_MAX_FILE_SIZE = {"cargo": len(data) - 1}
    response = publish(client, project, developer, body=body)
    assert response.status_code == 413
    assert errors(response) == [f"max upload size is: {len(data) - 1}"]
    assert stored_objects(blob_dir) == [] and not Package.objects.exists()
    settings.PACKAGE_MAX_FILE_SIZE = {"cargo": len(data)}
    assert publish(client, project, developer, body=body).status_code == 200


def test_yank_and_unyank(client, project, developer, maintainer):
    publish(client, project, developer)
    publish(client, project, developer, version="1.1.0")
    yank = f"{base(project)}/api/v1/crates/shout/1.1.0/yank"
    assert client.delete(yank, **developer).status_code == 403
    assert client.put(yank, **maintainer).status_code == 405
    response = client.delete(yank, **maintainer)
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert [line["yanked"] for line in index_lines(client, project, developer)] == [False, True]
    # Still downloadable: lockfiles that hold it keep building.
    assert client.get(f"{base(project)}/api/v1/crates/shout/1.1.0/download", **developer).status_code == 200
    unyank = f"{base(project)}/api/v1/crates/shout/1.1.0/unyank"
    assert client.put(unyank, **maintainer).status_code == 200
    assert [line["yanked"] for line in index_lines(client, project, developer)] == [False, False]
    for missing in ("shout/9.9.9", "nope/1.0.0", "shout/x"):
        assert client.delete(f"{base(project)}/api/v1/crates/{missing}/yank", **maintainer).status_code == 404


def test_yanks_go_through_the_withdrawal_contract(client, project, developer, maintainer):
    """`cargo yank`, the REST API's withdrawal endpoint and the version's page are one
    withdrawal: recorded on the version and in the audit trail, shown on the page, read by the
    index whichever way it was made."""
    publish(client, project, developer)
    publish(client, project, developer, version="1.1.0")
    version = PackageVersion.objects.get(version="1.1.0")
    crate_api = f"{base(project)}/api/v1/crates/shout/1.1.0"
    withdrawal = f"/api/v4/projects/{project.pk}/packages/{version.pk}/withdrawal"

    assert client.delete(f"{crate_api}/yank", **maintainer).status_code == 200
    version.refresh_from_db()
    assert version.metadata["withdrawn"]["reason"] == "" and "yanked" not in version.metadata
    listed = client.get(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **maintainer).json()
    assert listed["withdrawn"]["by"] == version.metadata["withdrawn"]["by"]
    events = AuditEvent.objects.filter(target_id=str(version.pk), action__startswith="package_withdraw").order_by("pk")
    assert [(e.action, e.details["action"]) for e in events.all()] == [("package_withdrawn", "yank")]

    # the REST API gives it a reason; yanking again through cargo keeps it
    response = client.post(withdrawal, {"reason": "CVE-2026-7"}, **maintainer)
    assert (response.status_code, response.json()["withdrawn"]["reason"]) == (201, "CVE-2026-7")
    assert client.delete(f"{crate_api}/yank", **maintainer).status_code == 200
    version.refresh_from_db()
    assert version.metadata["withdrawn"]["reason"] == "CVE-2026-7"
    client.force_login(UserFactory(is_superuser=True))
    page = client.get(f"/{project.full_path}/-/packages/{version.pk}").content.decode()
    assert "<strong>Yanked</strong>: CVE-2026-7" in page and "Unyank 1.1.0" in page

    # undone through the REST API: cargo sees it again; the page yanks it again
    assert client.delete(withdrawal, **maintainer).status_code == 200
    assert [line["yanked"] for line in index_lines(client, project, developer)] == [False, False]
    assert client.post(f"/{project.full_path}/-/packages/{version.pk}/withdrawal", {"reason": "x"}).status_code == 302
    assert [line["yanked"] for line in index_lines(client, project, developer)] == [False, True]
    assert client.put(f"{crate_api}/unyank", **maintainer).status_code == 200
    version.refresh_from_db()
    assert [e["action"] for e in version.metadata["withdrawals"]] == ["yank", "yank", "unyank", "yank", "unyank"]
    assert events.count() == 5


def test_group_index_aggregates_what_the_caller_may_pull(client, group, project, developer):
    hidden = ProjectFactory(group=GroupFactory(path="sub", parent=group), path="hidden")
    publisher = token_for(hidden, AccessLevel.DEVELOPER)
    publish(client, project, developer)
    assert publish(client, hidden, publisher, version="2.0.0").status_code == 200
    group_base = f"/api/v4/groups/{group.pk}/-/packages/cargo"

    lines = [json.loads(x) for x in client.get(f"{group_base}/index/sh/ou/shout", **developer).content.splitlines()]
    assert [line["vers"] for line in lines] == ["1.0.0"]  # the developer is no member of `hidden`
    hidden_reader = token_for(hidden, AccessLevel.REPORTER)
    response = client.get(f"{group_base}/index/sh/ou/shout", **hidden_reader)
    lines = [json.loads(x) for x in response.content.splitlines()]
    assert [line["vers"] for line in lines] == ["2.0.0"]  # a member of `hidden` only

    cksum = hashlib.sha256(crate("shout", "1.0.0")).hexdigest()
    download = client.get(f"{group_base}/dl/shout/1.0.0/{cksum}", **developer)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == crate("shout", "1.0.0")
    assert client.get(f"{group_base}/dl/shout/1.0.0/{'0' * 64}", **developer).status_code == 404
    assert client.get(f"{group_base}/dl/shout/2.0.0/{cksum}", **developer).status_code == 404
    assert client.put(f"{group_base}/index/sh/ou/shout", **developer).status_code == 405


def test_a_cached_index_file_is_answered_without_reading_versions(client, project, developer, maintainer):
    """Whether any version can be installed is checked where the index file is built: a cached
    one was built under the same epochs, which every status change bumps."""
    publish(client, project, developer)
    assert index_lines(client, project, developer)  # built and cached
    with CaptureQueriesContext(connection) as queries:
        assert index_lines(client, project, developer)
    assert [q["sql"] for q in queries.captured_queries if PackageVersion._meta.db_table in q["sql"]] == []
    only = PackageVersion.objects.get()
    assert client.delete(f"/api/v4/projects/{project.pk}/packages/{only.pk}", **maintainer).status_code == 204
    assert client.get(f"{base(project)}/index/sh/ou/shout", **developer).status_code == 404


def test_deleted_versions_leave_the_index_and_cleanup_applies(client, project, developer, maintainer, settings):
    settings.BLOB_GRACE_SECONDS = 0
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        publish(client, project, developer, version=version)
    first = PackageVersion.objects.get(version="1.0.0")
    assert client.delete(f"/api/v4/projects/{project.pk}/packages/{first.pk}", **maintainer).status_code == 204
    assert [line["vers"] for line in index_lines(client, project, developer)] == ["1.1.0", "1.2.0"]

    CleanupPolicy.objects.create(project=project, keep_n_versions=1)
    tasks.apply_cleanup_policy(project.pk)
    assert [line["vers"] for line in index_lines(client, project, developer)] == ["1.2.0"]


def test_packages_api_and_the_version_page_show_cargo(client, project, developer, maintainer):
    publish(client, project, developer, body=cargo_publish_body("shout", "1.0.0", cargo_metadata("shout", "1.0.0")))
    listed = client.get(f"/api/v4/projects/{project.pk}/packages?package_type=cargo", **developer).json()
    assert [(p["name"], p["version"], p["package_type"]) for p in listed] == [("shout", "1.0.0", "cargo")]
    files = client.get(f"/api/v4/projects/{project.pk}/packages/{listed[0]['id']}/package_files", **developer).json()
    assert [f["file_name"] for f in files] == ["shout-1.0.0.crate"]

    member = UserFactory()
    MembershipFactory(user=member, project=project, access_level=AccessLevel.REPORTER)
    client.force_login(member)
    page = client.get(f"/{project.full_path}/-/packages/{listed[0]['id']}")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'index = "sparse+http://testserver/api/v4/projects/{project.pk}/packages/cargo/index/"' in text.replace(
        "&quot;", '"'
    )
    assert "cargo add shout@1.0.0 --registry packhouse" in text
