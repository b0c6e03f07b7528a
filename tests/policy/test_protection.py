"""Package protection rules, enforced by the one policy on every way a package changes: each
format's publish (npm dist-tags and deprecation, Maven SNAPSHOT and metadata redeploys, NuGet
symbol pushes, duplicate overwrites), every delete route (format, REST API, pages), for access,
deploy and job tokens. What a refusal leaves behind is checked in the database and storage."""

import json

import pytest

from accounts.roles import AccessLevel
from registry.models import Blob, PackageFile, PackageVersion, ProtectionRule, Status
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.formats.nuget.nupkg import multipart, nupkg
from tests.helpers import auth_headers
from tests.payloads import npm_document
from tests.policy.test_format_matrix import FORMATS, SUCCESS

pytestmark = pytest.mark.django_db

PROTECTED = "Package protected."
GITLAB_SHAPED = {"generic", "maven", "nuget", "conan"}  # rubygems and go answer plain text


class People:
    """A project and one credential of each kind that matters."""

    def __init__(self, project):
        self.project = project
        self.users = {}
        for role, level in (
            ("developer", AccessLevel.DEVELOPER),
            ("maintainer", AccessLevel.MAINTAINER),
            ("owner", AccessLevel.OWNER),
        ):
            user = UserFactory()
            MembershipFactory(user=user, project=project, access_level=level)
            self.users[role] = user
        self.users["admin"] = AdminFactory()

    def pat(self, role):
        return auth_headers(AccessTokenFactory(user=self.users[role]).plaintext, "bearer")

    def job(self, role):
        return auth_headers(CiJobFactory(project=self.project, user=self.users[role]).plaintext, "job")

    def deploy(self):
        return auth_headers(DeployTokenFactory(project=self.project).plaintext, "bearer")


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def people(project):
    return People(project)


def protect(project, package_type, pattern="*", push=None, delete=None):
    return ProtectionRule.objects.create(
        project=project,
        package_type=package_type,
        package_name_pattern=pattern,
        minimum_access_level_for_push=push,
        minimum_access_level_for_delete=delete,
    )


def assert_protected(response, format_name):
    """403 `Package protected.` in the format's own error shape."""
    assert response.status_code == 403, response.content
    if format_name == "npm":
        assert response.json()["error"] == f"Forbidden - {PROTECTED}"
    elif format_name == "pypi":
        assert response.reason_phrase == PROTECTED
    elif format_name == "cargo":  # cargo shows `errors[].detail`
        assert response.json() == {"errors": [{"detail": PROTECTED}]}
    elif format_name in GITLAB_SHAPED:
        assert response.json() == {"message": f"403 Forbidden - {PROTECTED}"}
    else:
        assert PROTECTED in response.content.decode(), response.content


@pytest.mark.parametrize("format_class", FORMATS, ids=lambda f: f.name)
def test_a_protected_publish_is_refused_below_the_push_level_in_every_format(client, people, format_class, blob_dir):
    fmt = format_class(people.project)
    assert fmt.publish(client, people.pat("maintainer"), "1.0.0").status_code in SUCCESS[fmt.name]
    protect(people.project, fmt.name, push=AccessLevel.MAINTAINER)
    files_before = PackageFile.objects.count()
    blobs_before = Blob.objects.count()

    for headers in (people.pat("developer"), people.deploy(), people.job("developer")):
        assert_protected(fmt.publish(client, headers, "2.0.0"), fmt.name)
    assert not PackageVersion.objects.filter(version="2.0.0").exists()
    assert (PackageFile.objects.count(), Blob.objects.count()) == (files_before, blobs_before)

    assert fmt.publish(client, people.pat("maintainer"), "2.0.0").status_code in SUCCESS[fmt.name]
    assert fmt.publish(client, people.job("maintainer"), "3.0.0").status_code in SUCCESS[fmt.name]


@pytest.mark.parametrize("format_class", FORMATS, ids=lambda f: f.name)
def test_a_deploy_token_never_publishes_a_protected_package(client, people, format_class):
    fmt = format_class(people.project)
    protect(people.project, fmt.name, delete=AccessLevel.OWNER)  # push left at its default
    assert fmt.publish(client, people.pat("developer"), "1.0.0").status_code in SUCCESS[fmt.name]
    assert_protected(fmt.publish(client, people.deploy(), "2.0.0"), fmt.name)


@pytest.mark.parametrize("format_class", FORMATS, ids=lambda f: f.name)
def test_rules_of_another_type_or_name_leave_a_package_alone(client, people, format_class):
    fmt = format_class(people.project)
    other_type = next(f.name for f in FORMATS if f.name != fmt.name)
    protect(people.project, other_type, push=AccessLevel.OWNER)
    protect(people.project, fmt.name, pattern="unrelated-*", push=AccessLevel.OWNER)
    assert fmt.publish(client, people.deploy(), "1.0.0").status_code in SUCCESS[fmt.name]


def test_admin_level_is_for_administrators_only(client, people):
    fmt = FORMATS[0](people.project)  # generic
    protect(people.project, fmt.name, push=protection_admin())
    assert_protected(fmt.publish(client, people.pat("owner"), "1.0.0"), fmt.name)
    admin_job = CiJobFactory(project=people.project, user=people.users["admin"])
    MembershipFactory(user=people.users["admin"], project=people.project, access_level=AccessLevel.OWNER)
    assert_protected(fmt.publish(client, auth_headers(admin_job.plaintext, "job"), "1.0.0"), fmt.name)
    assert fmt.publish(client, people.pat("admin"), "1.0.0").status_code == 201


def protection_admin():
    from registry import protection

    return protection.ADMIN


def test_wildcards_match_case_insensitively_and_by_the_formats_normal_name(client, people):
    from tests.payloads import twine_form

    protect(people.project, "pypi", pattern="my_company-*", push=AccessLevel.MAINTAINER)
    url = f"/api/v4/projects/{people.project.pk}/packages/pypi"
    for name in ("My.Company-Tools", "my-company-cli"):
        body, content_type = twine_form(name, "1.0.0")
        assert_protected(client.post(url, data=body, content_type=content_type, **people.pat("developer")), "pypi")
    body, content_type = twine_form("mycompany-tools", "1.0.0")
    assert client.post(url, data=body, content_type=content_type, **people.pat("developer")).status_code == 201


# --- npm: dist-tags, deprecation, unpublish ----------------------------------------------------


def npm_url(project, name="@acme/lib"):
    return f"/api/v4/projects/{project.pk}/packages/npm/{name.replace('/', '%2f')}"


def test_npm_dist_tags_and_deprecation_follow_the_rule(client, people):
    project = people.project
    url = npm_url(project)
    document = npm_document("@acme/lib", "1.0.0")
    assert client.put(url, data=document, content_type="application/json", **people.pat("developer")).status_code == 200
    protect(project, "npm", pattern="@acme/*", push=AccessLevel.MAINTAINER, delete=AccessLevel.OWNER)
    tags = f"/api/v4/projects/{project.pk}/packages/npm/-/package/@acme%2flib/dist-tags"

    add = client.put(f"{tags}/stable", data='"1.0.0"', content_type="application/json", **people.pat("developer"))
    assert_protected(add, "npm")
    add = client.put(f"{tags}/stable", data='"1.0.0"', content_type="application/json", **people.deploy())
    assert_protected(add, "npm")
    add = client.put(f"{tags}/stable", data='"1.0.0"', content_type="application/json", **people.pat("maintainer"))
    assert add.status_code == 204
    assert_protected(client.delete(f"{tags}/stable", **people.pat("maintainer")), "npm")
    assert client.get(tags, **people.pat("developer")).json() == {"latest": "1.0.0", "stable": "1.0.0"}
    assert client.delete(f"{tags}/stable", **people.pat("owner")).status_code == 204

    packument = client.get(url, **people.pat("maintainer")).json()
    packument["versions"]["1.0.0"]["deprecated"] = "use 2"
    deprecate = {"data": json.dumps(packument), "content_type": "application/json", "HTTP_NPM_COMMAND": "deprecate"}
    assert_protected(client.put(url, **deprecate, **people.pat("maintainer")), "npm")
    assert "deprecated" not in PackageVersion.objects.get(version="1.0.0").metadata
    assert client.put(url, **deprecate, **people.pat("owner")).status_code == 200

    assert_protected(client.delete(f"{url}/-rev/1", **people.pat("maintainer")), "npm")
    assert PackageVersion.objects.get(version="1.0.0").status == Status.DEFAULT
    assert client.delete(f"{url}/-rev/1", **people.pat("owner")).status_code == 200


# --- Maven: SNAPSHOT and metadata redeploys -----------------------------------------------------


def test_maven_snapshot_and_metadata_redeploys_are_refused(client, people):
    project = people.project
    base = f"/api/v4/projects/{project.pk}/packages/maven/com/example/app"
    snapshot = f"{base}/1.1-SNAPSHOT"

    def put(path, data, headers):
        return client.put(path, data=data, content_type="application/octet-stream", **headers)

    assert put(f"{snapshot}/app-1.1-20250101.100000-1.jar", b"one", people.pat("developer")).status_code == 200
    assert put(f"{snapshot}/maven-metadata.xml", b"<metadata/>", people.pat("developer")).status_code == 200
    protect(project, "maven", pattern="com/example/*", push=AccessLevel.MAINTAINER)

    for headers in (people.pat("developer"), people.deploy(), people.job("developer")):
        assert_protected(put(f"{snapshot}/app-1.1-20250101.110000-2.jar", b"two", headers), "maven")
        assert_protected(put(f"{snapshot}/maven-metadata.xml", b"<metadata>2</metadata>", headers), "maven")
        assert_protected(put(f"{base}/maven-metadata.xml", b"<metadata/>", headers), "maven")
    assert sorted(PackageFile.objects.values_list("file_name", flat=True)) == [
        "app-1.1-20250101.100000-1.jar",
        "maven-metadata.xml",
    ]
    assert put(f"{snapshot}/maven-metadata.xml", b"<metadata>2</metadata>", people.pat("maintainer")).status_code == 200


# --- NuGet symbol packages ----------------------------------------------------------------------


def test_nuget_symbol_push_is_refused(client, people):
    project = people.project
    prefix = f"/api/v4/projects/{project.pk}/packages/nuget"
    body, content_type = multipart(nupkg("Acme.Tools", "1.2.3"))
    assert client.put(f"{prefix}/", data=body, content_type=content_type, **people.pat("developer")).status_code == 201
    protect(project, "nuget", pattern="acme.*", push=AccessLevel.MAINTAINER)
    body, content_type = multipart(nupkg("Acme.Tools", "1.2.3"), "package.snupkg")
    push = client.put(f"{prefix}/symbolpackage", data=body, content_type=content_type, **people.pat("developer"))
    assert_protected(push, "nuget")
    assert not PackageFile.objects.filter(file_name__endswith=".snupkg").exists()
    push = client.put(f"{prefix}/symbolpackage", data=body, content_type=content_type, **people.pat("maintainer"))
    assert push.status_code == 201


# --- generic duplicate overwrites ---------------------------------------------------------------


def test_a_generic_overwrite_is_refused(client, people):
    project = people.project
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    upload = {"content_type": "application/octet-stream"}
    assert client.put(url, data=b"first", **upload, **people.pat("developer")).status_code == 201
    protect(project, "generic", pattern="tool", push=AccessLevel.MAINTAINER)
    assert_protected(client.put(url, data=b"second", **upload, **people.pat("developer")), "generic")
    assert client.get(url, **people.pat("developer")).getvalue() == b"first"


# --- deletes ------------------------------------------------------------------------------------


def test_deletes_below_the_delete_level_are_refused_on_every_route(client, people):
    project = people.project
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    assert client.put(url, data=b"x", content_type="text/plain", **people.pat("developer")).status_code == 201
    prefix = f"/api/v4/projects/{project.pk}/packages/nuget"
    body, content_type = multipart(nupkg("Acme.Tools", "1.2.3"))
    assert client.put(f"{prefix}/", data=body, content_type=content_type, **people.pat("developer")).status_code == 201
    protect(project, "generic", pattern="tool", delete=AccessLevel.OWNER)
    protect(project, "nuget", pattern="Acme.*", delete=AccessLevel.OWNER)
    version = PackageVersion.objects.get(package__name="tool")
    file_id = version.files.get().pk
    api = f"/api/v4/projects/{project.pk}/packages/{version.pk}"

    response = client.delete(api, **people.pat("maintainer"))
    assert response.status_code == 403
    assert response.json() == {"message": f"403 Forbidden - {PROTECTED}"}
    assert client.delete(f"{api}/package_files/{file_id}", **people.pat("maintainer")).status_code == 403
    assert_protected(client.delete(f"{prefix}/Acme.Tools/1.2.3", **people.pat("maintainer")), "nuget")
    assert_protected(client.delete(f"{prefix}/Acme.Tools/1.2.3", **people.job("maintainer")), "nuget")

    client.force_login(people.users["maintainer"])
    page = client.post(f"/acme/tools/-/packages/{version.pk}/delete")
    assert page.status_code == 403
    assert PROTECTED in page.content.decode()
    assert client.post(f"/acme/tools/-/packages/{version.pk}/files/{file_id}/delete").status_code == 403
    client.logout()
    assert set(PackageVersion.objects.values_list("status", flat=True)) == {Status.DEFAULT}
    assert not PackageFile.objects.exclude(status="default").exists()

    assert client.delete(api, **people.pat("owner")).status_code == 204
    assert client.delete(f"{prefix}/Acme.Tools/1.2.3", **people.pat("owner")).status_code == 204
    assert set(PackageVersion.objects.values_list("status", flat=True)) == {Status.PENDING_DESTRUCTION}


def test_the_default_delete_level_is_maintainer(client, people):
    project = people.project
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    assert client.put(url, data=b"x", content_type="text/plain", **people.pat("developer")).status_code == 201
    protect(project, "generic", push=AccessLevel.OWNER)
    version = PackageVersion.objects.get()
    assert (
        client.delete(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **people.pat("maintainer")).status_code
        == 204
    )
