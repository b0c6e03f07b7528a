"""RubyGems over HTTP: what `gem` and Bundler see, and what is left in the database and storage.
The real clients drive the same endpoints in tests/clients/rubygems."""

import gzip
import hashlib
import zlib

import pytest
from rubymarshal.reader import loads

from accounts.models import AuditEvent
from accounts.roles import AccessLevel
from registry import tasks
from registry.models import CleanupPolicy, Package, PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.formats.rubygems.gems import gem
from tests.helpers import stored_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="rb")


def key_for(project, level):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    return {"HTTP_AUTHORIZATION": AccessTokenFactory(user=user).plaintext}  # as `gem push` sends it


@pytest.fixture
def developer(project):
    return key_for(project, AccessLevel.DEVELOPER)


@pytest.fixture
def maintainer(project):
    return key_for(project, AccessLevel.MAINTAINER)


def base(project):
    return f"/api/v4/projects/{project.pk}/packages/rubygems"


def push(client, project, headers, data):
    return client.post(f"{base(project)}/api/v1/gems", data=data, content_type="application/octet-stream", **headers)


def get(client, project, path, headers):
    response = client.get(f"{base(project)}/{path}", **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def test_push_then_every_index(client, project, developer, blob_dir):
    assert client.head(f"{base(project)}/", **developer).status_code == 200
    data = gem(dependencies=[("base", ">=", "1.0", "runtime"), ("devdep", "~>", "2.0", "development")])
    response = push(client, project, developer, data)
    assert (response.status_code, response.content) == (200, b"Successfully registered gem: hola (0.1.0)")
    assert push(client, project, developer, gem(version="0.2.0.pre")).status_code == 200
    sha256 = hashlib.sha256(data).hexdigest()

    response, body = get(client, project, "info/hola", developer)
    assert body.decode().splitlines() == [
        "---",
        f"0.1.0 base:>= 1.0|checksum:{sha256},ruby:>= 2.7",
        f"0.2.0.pre |checksum:{hashlib.sha256(gem(version='0.2.0.pre')).hexdigest()},ruby:>= 2.7",
    ]
    assert response["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'  # what Bundler checks
    assert client.get(f"{base(project)}/info/hola", HTTP_IF_NONE_MATCH=response["ETag"], **developer).status_code == 304
    _, versions = get(client, project, "versions", developer)
    assert versions.decode().splitlines()[2] == f"hola 0.1.0,0.2.0.pre {hashlib.md5(body).hexdigest()}"
    assert get(client, project, "names", developer)[1] == b"---\nhola\n"

    specs = loads(gzip.decompress(get(client, project, "specs.4.8.gz", developer)[1]))
    assert [(n, v.marshal_dump(), p) for n, v, p in specs] == [("hola", ["0.1.0"], "ruby")]
    pre = loads(gzip.decompress(get(client, project, "prerelease_specs.4.8.gz", developer)[1]))
    assert [v.marshal_dump() for _, v, _ in pre] == [["0.2.0.pre"]]
    assert len(loads(gzip.decompress(get(client, project, "latest_specs.4.8.gz", developer)[1]))) == 1
    spec = loads(zlib.decompress(get(client, project, "quick/Marshal.4.8/hola-0.1.0.gemspec.rz", developer)[1]))
    assert spec.ruby_class_name == "Gem::Specification"
    assert get(client, project, "gems/hola-0.1.0.gem", developer)[1] == data
    assert len(stored_objects(blob_dir)) == 2
    for missing in ("info/nope", "gems/nope-1.0.gem", "quick/Marshal.4.8/nope-1.0.gemspec.rz"):
        assert get(client, project, missing, developer)[0].status_code == 404


def test_refusals_are_plain_text_and_leave_nothing(client, project, developer, blob_dir, settings):
    response = push(client, project, {}, gem())
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    assert response["Content-Type"].startswith("text/plain")
    assert push(client, project, {"HTTP_AUTHORIZATION": "glpat-wrong"}, gem()).status_code == 401
    response = push(client, project, developer, b"not a gem")
    assert response.status_code == 400 and b"not a gem" in response.content
    settings.PACKAGE_MAX_FILE_SIZE = {"rubygems": 100}
    assert push(client, project, developer, gem()).status_code == 413
    assert stored_objects(blob_dir) == [] and not Package.objects.exists()


def test_a_version_is_never_pushed_again_yanked_or_not(client, project, developer, maintainer, blob_dir):
    assert push(client, project, developer, gem()).status_code == 200
    before = stored_objects(blob_dir)
    response = push(client, project, developer, gem(body=b"changed"))
    assert response.status_code == 409 and b"Repushing of gem versions is not allowed" in response.content
    yank = client.delete(
        f"{base(project)}/api/v1/gems/yank",
        data="gem_name=hola&version=0.1.0",
        content_type="application/x-www-form-urlencoded",
        **maintainer,
    )
    assert (yank.status_code, yank.content) == (200, b"Successfully yanked gem: hola (0.1.0)")
    assert push(client, project, developer, gem(body=b"changed")).status_code == 409
    assert stored_objects(blob_dir) == before


def test_yank(client, project, developer, maintainer):
    push(client, project, developer, gem())
    push(client, project, developer, gem(version="0.2.0"))
    push(client, project, developer, gem(version="0.2.0", platform="java"))

    def yank(headers, form):
        return client.delete(
            f"{base(project)}/api/v1/gems/yank", data=form, content_type="application/x-www-form-urlencoded", **headers
        )

    assert yank(developer, "gem_name=hola&version=0.2.0").status_code == 403
    assert yank(maintainer, "gem_name=hola&version=0.2.0&platform=java").status_code == 200
    assert yank(maintainer, "gem_name=hola&version=0.2.0&platform=java").status_code == 400  # already
    assert yank(maintainer, "gem_name=hola&version=9.9").status_code == 404
    info = get(client, project, "info/hola", developer)[1].decode()
    assert [line.split()[0] for line in info.splitlines()[1:]] == ["0.1.0", "0.2.0"]
    assert yank(maintainer, "gem_name=hola&version=0.2.0").status_code == 200
    info = get(client, project, "info/hola", developer)[1].decode()
    assert [line.split()[0] for line in info.splitlines()[1:]] == ["0.1.0"]
    assert get(client, project, "quick/Marshal.4.8/hola-0.2.0.gemspec.rz", developer)[0].status_code == 404
    assert get(client, project, "gems/hola-0.2.0.gem", developer)[0].status_code == 200  # lockfiles still work
    specs = loads(gzip.decompress(get(client, project, "specs.4.8.gz", developer)[1]))
    assert [v.marshal_dump() for _, v, _ in specs] == [["0.1.0"]]


def test_yanks_go_through_the_withdrawal_contract(client, project, developer, maintainer):
    """`gem yank`, the REST API's withdrawal endpoint and the version's page are one withdrawal:
    recorded on the version and in the audit trail, shown on the page; the indexes follow it
    whichever way it was made, and only the REST API and the page undo it (`gem` has no unyank)."""
    push(client, project, developer, gem())
    push(client, project, developer, gem(version="0.2.0"))
    version = PackageVersion.objects.get(version="0.2.0")
    withdrawal = f"/api/v4/projects/{project.pk}/packages/{version.pk}/withdrawal"

    def yank():
        form, content_type = "gem_name=hola&version=0.2.0", "application/x-www-form-urlencoded"
        return client.delete(f"{base(project)}/api/v1/gems/yank", data=form, content_type=content_type, **maintainer)

    def indexed():
        info = get(client, project, "info/hola", developer)[1].decode()
        return [line.split()[0] for line in info.splitlines()[1:]]

    assert yank().status_code == 200
    version.refresh_from_db()
    assert version.metadata["withdrawn"]["reason"] == "" and "yanked" not in version.metadata
    events = AuditEvent.objects.filter(target_id=str(version.pk), action__startswith="package_withdraw").order_by("pk")
    assert [(e.action, e.details["action"]) for e in events.all()] == [("package_withdrawn", "yank")]
    client.force_login(UserFactory(is_superuser=True))
    page = client.get(f"/{project.full_path}/-/packages/{version.pk}").content.decode()
    assert "<strong>Yanked</strong>" in page and "Unyank 0.2.0" in page

    assert client.delete(withdrawal, **maintainer).status_code == 200  # undone
    assert indexed() == ["0.1.0", "0.2.0"]
    assert get(client, project, "quick/Marshal.4.8/hola-0.2.0.gemspec.rz", developer)[0].status_code == 200
    response = client.post(withdrawal, {"reason": "leaks a key"}, **maintainer)
    assert (response.status_code, response.json()["withdrawn"]["reason"]) == (201, "leaks a key")
    assert indexed() == ["0.1.0"]
    refused = yank()  # as before: a yanked version is not yanked again, its reason stays
    assert (refused.status_code, refused.content) == (400, b"The version 0.2.0 (ruby) of hola has already been yanked.")
    page_withdrawal = f"/{project.full_path}/-/packages/{version.pk}/withdrawal"
    assert client.post(page_withdrawal, {"action": "undo"}).status_code == 302
    assert indexed() == ["0.1.0", "0.2.0"]
    version.refresh_from_db()
    assert [e["action"] for e in version.metadata["withdrawals"]] == ["yank", "unyank", "yank", "unyank"]
    assert events.count() == 4


def test_cleanup_packages_api_and_the_version_page(client, project, developer, settings):
    settings.BLOB_GRACE_SECONDS = 0
    push(client, project, developer, gem())
    push(client, project, developer, gem(version="0.2.0"))
    listed = client.get(f"/api/v4/projects/{project.pk}/packages?package_type=rubygems", **developer).json()
    assert sorted((p["name"], p["version"]) for p in listed) == [("hola", "0.1.0"), ("hola", "0.2.0")]
    member = UserFactory()
    MembershipFactory(user=member, project=project, access_level=AccessLevel.REPORTER)
    client.force_login(member)
    text = client.get(f"/{project.full_path}/-/packages/{listed[0]['id']}").content.decode().replace("&quot;", '"')
    assert f'source "http://testserver{base(project)}" do' in text

    CleanupPolicy.objects.create(project=project, keep_n_versions=1)
    tasks.apply_cleanup_policy(project.pk)
    info = get(client, project, "info/hola", developer)[1].decode()
    assert [line.split()[0] for line in info.splitlines()[1:]] == ["0.2.0"]
    assert PackageVersion.objects.filter(status="default").count() == 1
