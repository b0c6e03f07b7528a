"""The permission matrix across every format's routes: project pull and publish, group pull, and
instance pull (npm, Maven), per principal kind, visibility and role. Expected statuses are data;
"ok" stands for the format's own success code (npm 200, PyPI 201, Maven 200, NuGet 201, generic
201/200, Cargo 200, Conan 201/200, RubyGems 200, Go 201/200). Group routes never show a package
from a project the caller cannot pull."""

import pytest

from accounts.authentication import principal_for_token
from accounts.roles import AccessLevel
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    finish,
)
from tests.formats.golang.modules import module_zip
from tests.formats.nuget.nupkg import multipart, nupkg
from tests.formats.rubygems.gems import gem
from tests.helpers import auth_headers
from tests.payloads import cargo_publish_body, npm_document, twine_form

pytestmark = pytest.mark.django_db

OK = "ok"
# (principal, visibility, role) -> (project pull, project publish, group pull, instance pull)
MATRIX = {
    ("anonymous", "public", None): (OK, 401, OK, OK),
    ("anonymous", "internal", None): (401, 401, 401, 401),
    ("anonymous", "private", None): (401, 401, 401, 401),
    ("pat", "public", None): (OK, 403, OK, OK),
    ("pat", "internal", None): (OK, 403, OK, OK),
    ("pat", "private", None): (404, 404, 404, 404),
    ("pat", "private", "guest"): (403, 403, 404, 404),
    ("pat", "private", "reporter"): (OK, 403, OK, OK),
    ("pat", "private", "developer"): (OK, OK, OK, OK),
    ("read_api", "private", "developer"): (OK, 403, OK, OK),
    ("deploy_read", "private", None): (OK, 403, OK, OK),
    ("deploy_write", "private", None): (OK, OK, OK, OK),
    ("other_project_deploy", "private", None): (404, 404, 404, 404),
    ("other_project_deploy", "public", None): (OK, 403, OK, OK),
    ("job", "private", "developer"): (OK, OK, OK, OK),
    ("job_not_allowlisted", "private", "developer"): (404, 404, 404, 404),
    ("job_not_allowlisted", "public", "developer"): (OK, 403, OK, OK),
    ("finished_job", "private", "developer"): (401, 401, 401, 401),
    ("revoked", "private", "developer"): (401, 401, 401, 401),
}


class Format:
    """One format's routes: how to seed a package, pull it, publish another version."""

    name = ""
    ok = ()
    has_instance = False

    def __init__(self, project):
        self.project = project
        self.p = f"/api/v4/projects/{project.pk}/packages/{self.name}"
        self.g = f"/api/v4/groups/{project.group_id}/-/packages/{self.name}"
        self.i = f"/api/v4/packages/{self.name}"


class Generic(Format):
    name = "generic"

    def publish(self, client, headers, version):
        return client.put(
            f"{self.p}/pkg/{version}/f.bin", data=version.encode(), content_type="application/octet-stream", **headers
        )

    def pull(self, client, headers):
        return client.get(f"{self.p}/pkg/1.0.0/f.bin", **headers)


class Npm(Format):
    name = "npm"
    has_instance = True

    def publish(self, client, headers, version):
        scope = self.project.group.path
        return client.put(
            f"{self.p}/@{scope}%2fpkg",
            data=npm_document(f"@{scope}/pkg", version),
            content_type="application/json",
            **headers,
        )

    def pull(self, client, headers, base=None):
        return client.get(f"{base or self.p}/@{self.project.group.path}%2fpkg", **headers)

    def group_pull(self, client, headers):
        return self.pull(client, headers, self.g)

    def instance_pull(self, client, headers):
        return self.pull(client, headers, self.i)


class Pypi(Format):
    name = "pypi"

    def publish(self, client, headers, version):
        body, content_type = twine_form("matrix-pkg", version)
        return client.post(self.p, data=body, content_type=content_type, **headers)

    def pull(self, client, headers, base=None):
        response = client.get(f"{base or self.p}/simple/matrix-pkg/", HTTP_ACCEPT="text/html", **headers)
        if response.status_code == 200:  # the index must list the file, not an empty page
            assert b"matrix_pkg-1.0.0-py3-none-any.whl" in response.content
        return response

    def group_pull(self, client, headers):
        return self.pull(client, headers, self.g)


class Maven(Format):
    name = "maven"
    has_instance = True

    def publish(self, client, headers, version):
        return client.put(
            f"{self.p}/com/example/pkg/{version}/pkg-{version}.jar",
            data=version.encode(),
            content_type="application/java-archive",
            **headers,
        )

    def pull(self, client, headers, base=None):
        return client.get(f"{base or self.p}/com/example/pkg/1.0.0/pkg-1.0.0.jar", **headers)

    def group_pull(self, client, headers):
        return self.pull(client, headers, self.g)

    def instance_pull(self, client, headers):
        return self.pull(client, headers, self.i)


class Nuget(Format):
    name = "nuget"

    def publish(self, client, headers, version):
        body, content_type = multipart(nupkg("Matrix.Pkg", version))
        return client.put(f"{self.p}/", data=body, content_type=content_type, **headers)

    def pull(self, client, headers, base=None):
        return client.get(f"{base or self.p}/metadata/matrix.pkg/index.json", **headers)

    def group_pull(self, client, headers):
        return self.pull(client, headers, self.g)


class Cargo(Format):
    name = "cargo"

    def publish(self, client, headers, version):
        return client.put(
            f"{self.p}/api/v1/crates/new",
            data=cargo_publish_body("pkg", version),
            content_type="application/octet-stream",
            **headers,
        )

    def pull(self, client, headers, base=None):
        response = client.get(f"{base or self.p}/index/3/p/pkg", **headers)
        if response.status_code == 200:  # the index must list the version, not an empty file
            assert b'"vers":"1.0.0"' in response.content
        return response

    def group_pull(self, client, headers):
        return self.pull(client, headers, self.g)


class Conan(Format):
    name = "conan"
    revision = "89ff91b4eafc0981d1d15f1f8c7df250"

    def publish(self, client, headers, version):
        url = f"{self.p}/v2/conans/pkg/{version}/_/_/revisions/{self.revision}/files/conanmanifest.txt"
        return client.put(url, data=version.encode(), content_type="application/octet-stream", **headers)

    def pull(self, client, headers):
        response = client.get(f"{self.p}/v2/conans/pkg/1.0.0/_/_/latest", **headers)
        if response.status_code == 200:
            assert response.json()["revision"] == self.revision
        return response


class Rubygems(Format):
    name = "rubygems"

    def publish(self, client, headers, version):
        return client.post(
            f"{self.p}/api/v1/gems", data=gem("pkg", version), content_type="application/octet-stream", **headers
        )

    def pull(self, client, headers):
        response = client.get(f"{self.p}/info/pkg", **headers)
        if response.status_code == 200:
            assert b"\n1.0.0 " in response.content
        return response


class Golang(Format):
    name = "golang"

    def __init__(self, project):
        super().__init__(project)
        self.p = f"/api/v4/projects/{project.pk}/packages/go"  # GitLab's mount for package type golang
        self.g = f"/api/v4/groups/{project.group_id}/-/packages/go"

    def publish(self, client, headers, version):
        major = int(version.split(".")[0])  # a v2+ module without a /v2 path is +incompatible
        data = module_zip("example.com/m/pkg", f"v{version}" + ("+incompatible" if major >= 2 else ""))
        return client.put(f"{self.p}/upload", data=data, content_type="application/zip", **headers)

    def pull(self, client, headers, base=None):
        response = client.get(f"{base or self.p}/example.com/m/pkg/@v/list", **headers)
        if response.status_code == 200:
            assert b"v1.0.0\n" in response.content
        return response

    def group_pull(self, client, headers):
        return self.pull(client, headers, self.g)


FORMATS = [Generic, Npm, Pypi, Maven, Nuget, Cargo, Conan, Rubygems, Golang]
SUCCESS = {
    "generic": (200, 201),
    "npm": (200,),
    "pypi": (200, 201),
    "maven": (200,),
    "nuget": (200, 201),
    "cargo": (200,),
    "conan": (200, 201),
    "rubygems": (200,),
    "golang": (200, 201),
}


def credential(kind, project, role):
    if kind == "anonymous":
        return {}
    other = ProjectFactory(group=GroupFactory())
    user = UserFactory()
    if role:
        level = {"guest": AccessLevel.GUEST, "reporter": AccessLevel.REPORTER, "developer": AccessLevel.DEVELOPER}
        MembershipFactory(user=user, project=project, access_level=level[role])
    if kind in ("pat", "read_api", "revoked"):
        token = AccessTokenFactory(user=user, scopes=["read_api"] if kind == "read_api" else ["api"])
        if kind == "revoked":
            token.revoke()
        return auth_headers(token.plaintext, "bearer")
    if kind == "deploy_read":
        return auth_headers(DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext, "deploy")
    if kind == "deploy_write":
        return auth_headers(DeployTokenFactory(project=project).plaintext, "bearer")
    if kind == "other_project_deploy":
        return auth_headers(DeployTokenFactory(project=other).plaintext, "deploy")
    job = CiJobFactory(project=project if kind in ("job", "finished_job") else other, user=user)
    if kind == "finished_job":
        finish(job)
    return auth_headers(job.plaintext, "job")


def status(response, fmt):
    return OK if response.status_code in SUCCESS[fmt.name] else response.status_code


@pytest.mark.parametrize(("kind", "visibility", "role"), list(MATRIX), ids=["-".join(map(str, key)) for key in MATRIX])
@pytest.mark.parametrize("format_class", FORMATS, ids=lambda f: f.name)
def test_format_matrix(client, format_class, kind, visibility, role):
    group = GroupFactory(path=f"m{GroupFactory._meta.model.objects.count()}x", visibility=visibility)
    project = ProjectFactory(group=group, visibility=visibility)
    fmt = format_class(project)
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext, "bearer")
    assert fmt.publish(client, admin, "1.0.0").status_code in SUCCESS[fmt.name] + (204,)
    headers = credential(kind, project, role)

    expected_pull, expected_publish, expected_group, expected_instance = MATRIX[(kind, visibility, role)]
    assert status(fmt.pull(client, headers), fmt) == expected_pull
    assert status(fmt.publish(client, headers, "2.0.0"), fmt) == expected_publish
    if hasattr(fmt, "group_pull"):
        assert status(fmt.group_pull(client, headers), fmt) == expected_group
    if fmt.has_instance:
        assert status(fmt.instance_pull(client, headers), fmt) == expected_instance


@pytest.mark.parametrize("format_class", [Npm, Pypi, Maven, Nuget, Cargo, Golang], ids=lambda f: f.name)
def test_group_routes_never_show_a_package_from_a_project_the_caller_cannot_pull(client, format_class):
    group = GroupFactory(path="shared", visibility="public")
    hidden = ProjectFactory(group=group, visibility="private")
    fmt = format_class(hidden)
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext, "bearer")
    assert fmt.publish(client, admin, "1.0.0").status_code in SUCCESS[fmt.name]
    stranger = auth_headers(AccessTokenFactory().plaintext, "bearer")
    for headers in ({}, stranger):
        response = fmt.group_pull(client, headers)
        assert response.status_code in (401, 403, 404), (headers, response.status_code)
    member = UserFactory()
    MembershipFactory(user=member, project=hidden, access_level=AccessLevel.REPORTER)
    assert fmt.group_pull(client, auth_headers(AccessTokenFactory(user=member).plaintext, "bearer")).status_code == 200


def test_principal_helpers_resolve():  # guards the matrix's own setup
    assert principal_for_token(AccessTokenFactory().plaintext).kind == "access_token"
