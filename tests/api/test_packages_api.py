"""Packages REST API (/api/v4/projects/:id/packages, /groups/:id/packages, files, settings)."""

import hashlib

import pytest

from accounts.roles import AccessLevel
from registry.models import DuplicateSetting, PackageFile, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


class Who:
    def __init__(self, level=None, **where):
        self.user = UserFactory()
        if level is not None:
            MembershipFactory(user=self.user, access_level=level, **where)
        self.headers = auth_headers(AccessTokenFactory(user=self.user).plaintext)


@pytest.fixture
def acme():
    return GroupFactory(path="acme")


@pytest.fixture
def project(acme):
    return ProjectFactory(group=acme, path="tools")


@pytest.fixture
def sibling(acme):
    return ProjectFactory(group=GroupFactory(path="sub", parent=acme), path="libs")


@pytest.fixture
def maintainer(project):
    return Who(AccessLevel.MAINTAINER, project=project)


@pytest.fixture
def developer(project):
    return Who(AccessLevel.DEVELOPER, project=project)


@pytest.fixture
def reporter(project):
    return Who(AccessLevel.REPORTER, project=project)


def publish(api, project, headers, name, version, file_name="f.bin", data=b"payload"):
    response = api.put(
        f"/api/v4/projects/{project.pk}/packages/generic/{name}/{version}/{file_name}",
        data=data,
        content_type="application/octet-stream",
        **headers,
    )
    assert response.status_code == 201, response.content
    return PackageVersion.objects.get(package__project=project, package__name=name, version=version)


@pytest.fixture
def published(api, project, maintainer):
    return [
        publish(api, project, maintainer.headers, "beta", "1.0.0"),
        publish(api, project, maintainer.headers, "alpha", "2.0.0"),
        publish(api, project, maintainer.headers, "alpha", "1.5.0"),
        publish(api, project, maintainer.headers, "gamma", "0.1.0"),
    ]


def names(response):
    return [(p["name"], p["version"]) for p in response.json()]


def test_project_list_shape_and_default_order(api, project, maintainer, published):
    response = api.get(f"/api/v4/projects/{project.pk}/packages", **maintainer.headers)
    assert response.status_code == 200
    assert names(response) == [("beta", "1.0.0"), ("alpha", "2.0.0"), ("alpha", "1.5.0"), ("gamma", "0.1.0")]
    first = response.json()[0]
    assert set(first) >= {"id", "name", "version", "package_type", "status", "_links", "created_at", "tags"}
    assert first["id"] == published[0].pk
    assert first["package_type"] == "generic"
    assert first["status"] == "default"
    assert first["tags"] == []
    assert first["_links"]["web_path"] == f"/acme/tools/-/packages/{published[0].pk}"
    assert first["_links"]["delete_api_path"].endswith(f"/api/v4/projects/{project.pk}/packages/{published[0].pk}")
    assert first["created_at"].endswith("Z")
    assert first["last_downloaded_at"] is None


def test_filters_and_ordering(api, project, maintainer, published):
    base = f"/api/v4/projects/{project.pk}/packages"
    get = lambda query: api.get(f"{base}?{query}", **maintainer.headers)  # noqa: E731
    assert names(get("package_name=alp")) == [("alpha", "2.0.0"), ("alpha", "1.5.0")]
    assert names(get("package_name=alpha&package_version=1.5.0")) == [("alpha", "1.5.0")]
    assert names(get("package_type=npm")) == []
    assert len(get("package_type=generic").json()) == 4
    by_name = [("alpha", "2.0.0"), ("alpha", "1.5.0"), ("beta", "1.0.0"), ("gamma", "0.1.0")]
    assert names(get("order_by=name")) == by_name
    assert names(get("order_by=version&sort=desc"))[0] == ("alpha", "2.0.0")
    assert names(get("order_by=version&sort=asc"))[0] == ("gamma", "0.1.0")
    assert names(get("sort=desc"))[0] == ("gamma", "0.1.0")
    assert get("order_by=bogus").status_code == 400
    assert get("sort=sideways").status_code == 400
    assert get("status=bogus").status_code == 400


def test_status_filter_and_default_statuses(api, project, maintainer, published):
    PackageVersion.objects.filter(pk=published[0].pk).update(status="hidden")
    PackageVersion.objects.filter(pk=published[1].pk).update(status="error")
    base = f"/api/v4/projects/{project.pk}/packages"
    listed = names(api.get(base, **maintainer.headers))
    assert ("beta", "1.0.0") not in listed and ("alpha", "2.0.0") in listed
    assert names(api.get(f"{base}?status=hidden", **maintainer.headers)) == [("beta", "1.0.0")]


def test_pagination_headers(api, project, maintainer, published):
    response = api.get(f"/api/v4/projects/{project.pk}/packages?per_page=3&page=1", **maintainer.headers)
    assert len(response.json()) == 3
    assert response["X-Total"] == "4"
    assert response["X-Total-Pages"] == "2"
    assert response["X-Page"] == "1"
    assert response["X-Per-Page"] == "3"
    assert response["X-Next-Page"] == "2"
    assert response["X-Prev-Page"] == ""
    assert 'rel="next"' in response["Link"]
    second = api.get(f"/api/v4/projects/{project.pk}/packages?per_page=3&page=2", **maintainer.headers)
    assert names(second) == [("gamma", "0.1.0")]
    assert second["X-Next-Page"] == "" and second["X-Prev-Page"] == "1"


def test_statuses_401_403_404(api, project, maintainer, reporter, published):
    base = f"/api/v4/projects/{project.pk}/packages"
    anonymous = api.get(base)
    assert anonymous.status_code == 401
    assert "Basic" in anonymous["WWW-Authenticate"]
    assert api.get(base, **Who().headers).status_code == 404  # private, not a member
    assert api.get("/api/v4/projects/999999/packages", **maintainer.headers).status_code == 404
    # Reporter reads, but cannot delete; no delete link for them.
    listing = api.get(base, **reporter.headers)
    assert listing.status_code == 200
    assert "delete_api_path" not in listing.json()[0]["_links"]
    assert api.delete(f"{base}/{published[0].pk}", **reporter.headers).status_code == 403
    assert api.get(f"{base}/settings", **reporter.headers).status_code == 403
    # Deploy tokens are refused on the REST packages API.
    deploy = DeployTokenFactory(project=project)
    assert api.get(base, **auth_headers(deploy.plaintext, "deploy")).status_code == 403
    # read_api may list, not delete.
    read_only = AccessTokenFactory(user=maintainer.user, scopes=["read_api"])
    assert api.get(base, **auth_headers(read_only.plaintext)).status_code == 200
    assert api.delete(f"{base}/{published[0].pk}", **auth_headers(read_only.plaintext)).status_code == 403
    # Unknown package id.
    assert api.get(f"{base}/999999", **maintainer.headers).status_code == 404


def test_public_project_lists_anonymously(api, project, maintainer, published):
    project.visibility = "public"
    project.save()
    response = api.get(f"/api/v4/projects/{project.pk}/packages")
    assert response.status_code == 200
    assert len(response.json()) == 4
    assert "delete_api_path" not in response.json()[0]["_links"]


def test_job_token_lists(api, project, developer, published):
    job = CiJobFactory(project=project, user=developer.user)
    response = api.get(f"/api/v4/projects/{project.pk}/packages", **auth_headers(job.plaintext, "job"))
    assert response.status_code == 200


def test_get_single_package_with_versions(api, project, maintainer, published):
    alpha2 = published[1]
    response = api.get(f"/api/v4/projects/{project.pk}/packages/{alpha2.pk}", **maintainer.headers)
    assert response.status_code == 200
    data = response.json()
    assert data["name"] == "alpha" and data["version"] == "2.0.0"
    assert [v["version"] for v in data["versions"]] == ["1.5.0"]
    # Not default/deprecated: 404 on the single GET.
    PackageVersion.objects.filter(pk=alpha2.pk).update(status="hidden")
    assert api.get(f"/api/v4/projects/{project.pk}/packages/{alpha2.pk}", **maintainer.headers).status_code == 404


def test_package_files(api, project, maintainer):
    version = publish(api, project, maintainer.headers, "tool", "1.0", "a.txt", b"aaa")
    publish(api, project, maintainer.headers, "tool", "1.0", "b.txt", b"bbbb")
    response = api.get(f"/api/v4/projects/{project.pk}/packages/{version.pk}/package_files", **maintainer.headers)
    assert response.status_code == 200
    files = response.json()
    assert [f["file_name"] for f in files] == ["a.txt", "b.txt"]
    assert files[0]["size"] == 3
    assert files[0]["file_sha256"] == hashlib.sha256(b"aaa").hexdigest()
    assert files[0]["file_md5"] == hashlib.md5(b"aaa").hexdigest()
    assert files[0]["file_sha1"] == hashlib.sha1(b"aaa").hexdigest()
    assert files[0]["package_id"] == version.pk
    desc = api.get(
        f"/api/v4/projects/{project.pk}/packages/{version.pk}/package_files?order_by=file_name&sort=desc",
        **maintainer.headers,
    )
    assert [f["file_name"] for f in desc.json()] == ["b.txt", "a.txt"]


def test_delete_package_then_file_is_not_downloadable(api, project, maintainer, developer):
    version = publish(api, project, maintainer.headers, "tool", "1.0", "a.txt", b"aaa")
    download = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/a.txt"
    assert api.get(download, **maintainer.headers).status_code == 200
    assert api.delete(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **developer.headers).status_code == 403
    response = api.delete(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **maintainer.headers)
    assert response.status_code == 204
    version.refresh_from_db()
    assert version.status == "pending_destruction"
    assert api.get(download, **maintainer.headers).status_code == 404
    assert api.get(f"/api/v4/projects/{project.pk}/packages", **maintainer.headers).json() == []
    assert api.delete(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **maintainer.headers).status_code == 404


def test_delete_package_file(api, project, maintainer, developer):
    version = publish(api, project, maintainer.headers, "tool", "1.0", "a.txt", b"aaa")
    publish(api, project, maintainer.headers, "tool", "1.0", "b.txt", b"bbb")
    a = PackageFile.objects.get(version=version, file_name="a.txt")
    url = f"/api/v4/projects/{project.pk}/packages/{version.pk}/package_files/{a.pk}"
    assert api.delete(url, **developer.headers).status_code == 403
    assert api.delete(url, **maintainer.headers).status_code == 204
    generic = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0"
    assert api.get(f"{generic}/a.txt", **maintainer.headers).status_code == 404
    assert api.get(f"{generic}/b.txt", **maintainer.headers).status_code == 200
    assert api.delete(url, **maintainer.headers).status_code == 404


def test_group_listing_only_pullable_projects(api, acme, project, sibling, maintainer):
    publish(api, project, maintainer.headers, "tool", "1.0")
    sibling_maintainer = Who(AccessLevel.MAINTAINER, project=sibling)
    publish(api, sibling, sibling_maintainer.headers, "lib", "3.0")
    hidden = ProjectFactory(group=acme, path="secret")
    outsider = Who(AccessLevel.MAINTAINER, project=hidden)
    publish(api, hidden, outsider.headers, "classified", "9.9")

    # The maintainer of acme/tools sees acme (as an ancestor) but only pulls from acme/tools.
    response = api.get(f"/api/v4/groups/{acme.pk}/packages", **maintainer.headers)
    assert response.status_code == 200
    assert [(p["name"], p["project_id"], p["project_path"]) for p in response.json()] == [
        ("tool", project.pk, "acme/tools")
    ]
    owner = Who(AccessLevel.OWNER, group=acme)
    everything = api.get("/api/v4/groups/acme/packages?order_by=project_path", **owner.headers)
    assert [p["project_path"] for p in everything.json()] == ["acme/secret", "acme/sub/libs", "acme/tools"]
    assert "delete_api_path" in everything.json()[0]["_links"]
    desc = api.get("/api/v4/groups/acme/packages?order_by=project_path&sort=desc", **owner.headers)
    assert [p["project_path"] for p in desc.json()] == ["acme/tools", "acme/sub/libs", "acme/secret"]
    direct = api.get("/api/v4/groups/acme/packages?exclude_subgroups=true", **owner.headers)
    assert {p["project_path"] for p in direct.json()} == {"acme/secret", "acme/tools"}
    assert api.get(f"/api/v4/groups/{acme.pk}/packages").status_code == 401
    assert api.get(f"/api/v4/groups/{acme.pk}/packages", **Who().headers).status_code == 404


def test_package_settings_read_and_update(api, project, maintainer, developer):
    url = f"/api/v4/projects/{project.pk}/packages/settings"
    assert api.get(url, **developer.headers).status_code == 403
    response = api.get(url, **maintainer.headers)
    assert response.status_code == 200
    assert response.json() == {
        "generic_duplicates_allowed": True,
        "generic_duplicate_exception_regex": "",
        "maven_duplicates_allowed": True,
        "maven_duplicate_exception_regex": "",
        "nuget_duplicates_allowed": True,
        "nuget_duplicate_exception_regex": "",
        "nuget_symbol_server_enabled": False,
    }
    response = api.put(
        url,
        {"generic_duplicates_allowed": False, "generic_duplicate_exception_regex": "dev-.*"},
        format="json",
        **maintainer.headers,
    )
    assert response.status_code == 200, response.content
    assert response.json()["generic_duplicates_allowed"] is False
    assert response.json()["generic_duplicate_exception_regex"] == "dev-.*"
    assert response.json()["maven_duplicates_allowed"] is True
    row = DuplicateSetting.objects.get(project=project, format="generic")
    assert (row.allowed, row.exception_regex) == (False, "dev-.*")
    assert api.get(url, **maintainer.headers).json()["generic_duplicates_allowed"] is False
    bad = api.put(url, {"nuget_duplicate_exception_regex": "("}, format="json", **maintainer.headers)
    assert bad.status_code == 400
    assert "nuget_duplicate_exception_regex" in bad.json()["error"]
    assert api.put(url, {"generic_duplicates_allowed": True}, format="json", **developer.headers).status_code == 403
