"""Server-rendered pages with Django's test client: who sees what, CSRF, secrets shown once."""

import re

import pytest
from django.test import Client

from accounts.models import AccessToken, DeployToken, JobTokenScopeLink
from accounts.roles import AccessLevel
from registry import services
from registry.models import DuplicateSetting, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

SETTINGS_PAGES = [
    "settings/repository",
    "settings/access_tokens",
    "settings/ci_cd",
    "settings/general",
    "settings/packages_and_registries",
]


@pytest.fixture
def acme():
    return GroupFactory(path="acme")


@pytest.fixture
def project(acme):
    return ProjectFactory(group=acme, path="tools")


def member(project=None, level=AccessLevel.MAINTAINER, group=None):
    user = UserFactory()
    if project is not None or group is not None:
        MembershipFactory(user=user, project=project, group=group, access_level=level)
    return user


def signed_in(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def publish(project, user, name="tool", version="1.0.0", file_name="tool.bin", data=b"hello"):
    token = AccessTokenFactory(user=user).plaintext
    response = Client().put(
        f"/api/v4/projects/{project.pk}/packages/generic/{name}/{version}/{file_name}",
        data=data,
        content_type="application/octet-stream",
        **auth_headers(token),
    )
    assert response.status_code == 201
    return PackageVersion.objects.get(package__project=project, package__name=name, version=version)


def test_sign_in_and_dashboard(project):
    user = member(project)
    client = Client()
    assert client.get("/").status_code == 302
    page = client.get("/users/sign_in")
    assert page.status_code == 200 and b"Sign in" in page.content
    response = client.post("/users/sign_in", {"username": user.username, "password": "password-123"})
    assert response.status_code == 302
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert b"acme/tools" in dashboard.content and b"acme" in dashboard.content
    assert b"other/hidden" not in dashboard.content
    client.post("/users/sign_out")
    assert client.get("/").status_code == 302


def test_dashboard_lists_only_visible_projects(project):
    ProjectFactory(group=GroupFactory(path="other"), path="hidden")
    client = signed_in(member(project))
    content = client.get("/").content
    assert b"acme/tools" in content
    assert b"other/hidden" not in content


@pytest.mark.parametrize("suffix", SETTINGS_PAGES)
def test_reporter_gets_403_stranger_404_anonymous_redirect(project, suffix):
    url = f"/acme/tools/-/{suffix}"
    assert signed_in(member(project, AccessLevel.REPORTER)).get(url).status_code == 403
    assert signed_in(member(project, AccessLevel.DEVELOPER)).get(url).status_code == 403
    assert signed_in(member()).get(url).status_code == 404
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/users/sign_in?next=")
    assert signed_in(member(project)).get(url).status_code == 200
    assert signed_in(AdminFactory()).get(url).status_code == 200


def test_group_settings_need_owner(acme, project):
    for suffix in ("settings/repository", "settings/access_tokens"):
        url = f"/groups/acme/-/{suffix}"
        assert signed_in(member(group=acme, level=AccessLevel.MAINTAINER)).get(url).status_code == 403
        assert signed_in(member()).get(url).status_code == 404
        assert Client().get(url).status_code == 302
        assert signed_in(member(group=acme, level=AccessLevel.OWNER)).get(url).status_code == 200


def test_package_list_filter_sort_paginate_and_detail(project):
    maintainer = member(project)
    first = publish(project, maintainer, "alpha", "1.0.0")
    publish(project, maintainer, "beta", "2.0.0")
    for n in range(21):
        publish(project, maintainer, "many", f"0.0.{n}")
    client = signed_in(member(project, AccessLevel.REPORTER))
    page = client.get("/acme/tools/-/packages")
    assert page.status_code == 200
    assert b"Page 1 of 2" in page.content
    assert b"Page 2 of 2" in client.get("/acme/tools/-/packages?page=2").content
    filtered = client.get("/acme/tools/-/packages?name=alp&format=generic").content.decode()
    assert "alpha" in filtered and "beta" not in filtered
    by_name = client.get("/acme/tools/-/packages?sort=name_asc").content.decode()
    assert by_name.index("alpha") < by_name.index("beta")
    assert "alpha" not in client.get("/acme/tools/-/packages?format=npm").content.decode()
    detail = client.get(f"/acme/tools/-/packages/{first.pk}")
    text = detail.content.decode()
    assert detail.status_code == 200
    assert "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" in text  # sha256("hello")
    assert "5 B" in text or "5\xa0bytes" in text
    assert maintainer.username in text and "personal" in text
    assert f"http://testserver/api/v4/projects/{project.pk}/packages/generic/alpha/1.0.0/tool.bin" in text
    assert "Delete package version" not in text  # a Reporter cannot delete
    # Group listing aggregates; strangers get 404 on a private project.
    assert b"alpha" in client.get("/groups/acme/-/packages?name=alp").content
    assert signed_in(member()).get("/acme/tools/-/packages").status_code == 404
    assert Client().get("/acme/tools/-/packages").status_code == 302


def test_maintainer_deletes_package_and_file(project):
    maintainer = member(project)
    version = publish(project, maintainer)
    publish(project, maintainer, file_name="second.bin")
    client = signed_in(maintainer)
    detail = client.get(f"/acme/tools/-/packages/{version.pk}").content.decode()
    assert "Delete package version" in detail
    file_id = version.files.get(file_name="second.bin").pk
    reporter = signed_in(member(project, AccessLevel.REPORTER))
    assert reporter.post(f"/acme/tools/-/packages/{version.pk}/delete").status_code == 403
    assert client.post(f"/acme/tools/-/packages/{version.pk}/files/{file_id}/delete").status_code == 302
    assert version.files.get(pk=file_id).status == "pending_destruction"
    assert client.post(f"/acme/tools/-/packages/{version.pk}/delete").status_code == 302
    version.refresh_from_db()
    assert version.status == "pending_destruction"
    assert client.get(f"/acme/tools/-/packages/{version.pk}").status_code == 404


def test_install_snippets_per_format(project):
    from web.snippets import install_snippets

    npm = dict(install_snippets("npm", "https://pk.example", project, "@acme/lib", "1.0.0"))
    assert f"@acme:registry=https://pk.example/api/v4/projects/{project.pk}/packages/npm/" in npm[".npmrc"]
    pypi = dict(install_snippets("pypi", "https://pk.example", project, "lib", "1.0"))
    assert "index-url = https://__token__:${TOKEN}@pk.example/api/v4/projects" in pypi["pip.conf"]
    maven = dict(install_snippets("maven", "https://pk.example", project, "com/acme/lib", "1.0"))
    assert "<groupId>com.acme</groupId>" in maven["pom.xml"] and "<servers>" in maven["settings.xml"]
    nuget = dict(install_snippets("nuget", "https://pk.example", project, "Acme.Lib", "1.0"))
    assert f"projects/{project.pk}/packages/nuget/index.json" in nuget["nuget.config"]


def test_posts_without_csrf_fail(project):
    maintainer = member(project)
    version = publish(project, maintainer)
    client = signed_in(maintainer, enforce_csrf_checks=True)
    data = {"name": "ci", "scopes": ["read_package_registry"]}
    assert client.post("/acme/tools/-/settings/repository", data).status_code == 403
    assert client.post(f"/acme/tools/-/packages/{version.pk}/delete").status_code == 403
    assert client.post("/acme/tools/-/settings/general", {"visibility": "public"}).status_code == 403
    assert client.post("/-/user_settings/personal_access_tokens", {"name": "x", "scopes": ["api"]}).status_code == 403
    assert not DeployToken.objects.exists()
    version.refresh_from_db()
    assert version.status == "default"
    # With the token from the page, the same post works.
    page = client.get("/acme/tools/-/settings/repository")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert client.post("/acme/tools/-/settings/repository", {**data, "csrfmiddlewaretoken": csrf}).status_code == 200
    assert DeployToken.objects.count() == 1


def secret_in(content, prefix):
    match = re.search(rf'value="({re.escape(prefix)}[^"]+)" data-secret', content.decode())
    return match.group(1) if match else None


def test_deploy_token_secret_shown_once_and_works(project):
    maintainer = member(project)
    publish(project, maintainer)
    client = signed_in(maintainer)
    response = client.post(
        "/acme/tools/-/settings/repository",
        {"name": "ci", "scopes": ["read_package_registry"], "username": "ci-bot", "expires_at": "2099-01-01"},
    )
    assert response.status_code == 200
    secret = secret_in(response.content, "gldt-")
    assert secret
    row = DeployToken.objects.get()
    assert row.username == "ci-bot" and row.scopes == ["read_package_registry"] and row.creator == maintainer
    assert row.expires_at.year == 2099
    assert secret.encode() not in client.get("/acme/tools/-/settings/repository").content
    assert b"ci-bot" in client.get("/acme/tools/-/settings/repository").content
    download = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    assert Client().get(download, **auth_headers(secret, "deploy")).status_code == 200
    # Revoke from the page.
    assert client.post(f"/acme/tools/-/settings/repository/deploy_tokens/{row.pk}/revoke").status_code == 302
    assert Client().get(download, **auth_headers(secret, "deploy")).status_code == 401


def test_deploy_token_validation_reuses_api_rules(project):
    client = signed_in(member(project))
    bad = client.post(
        "/acme/tools/-/settings/repository", {"name": "x", "scopes": ["read_package_registry"], "username": "bad name!"}
    )
    assert bad.status_code == 400
    assert not DeployToken.objects.exists()
    assert client.post("/acme/tools/-/settings/repository", {"name": "x"}).status_code == 400


def test_group_deploy_token(acme, project):
    owner = member(group=acme, level=AccessLevel.OWNER)
    response = signed_in(owner).post(
        "/groups/acme/-/settings/repository", {"name": "grp", "scopes": ["read_package_registry"]}
    )
    assert response.status_code == 200
    assert secret_in(response.content, "gldt-")
    assert DeployToken.objects.get().group == acme


def test_personal_access_token_shown_once(project):
    user = member(project)
    client = signed_in(user)
    response = client.post("/-/user_settings/personal_access_tokens", {"name": "laptop", "scopes": ["api"]})
    assert response.status_code == 200
    secret = secret_in(response.content, "glpat-")
    assert secret
    listing = client.get("/-/user_settings/personal_access_tokens").content
    assert secret.encode() not in listing and b"laptop" in listing
    assert Client().get(f"/api/v4/projects/{project.pk}/packages", **auth_headers(secret)).status_code == 200
    row = AccessToken.objects.get(user=user)
    # Nobody else can revoke it.
    assert signed_in(member()).post(f"/-/user_settings/personal_access_tokens/{row.pk}/revoke").status_code == 404
    assert client.post(f"/-/user_settings/personal_access_tokens/{row.pk}/revoke").status_code == 302
    assert Client().get(f"/api/v4/projects/{project.pk}/packages", **auth_headers(secret)).status_code == 401
    past = client.post(
        "/-/user_settings/personal_access_tokens", {"name": "x", "scopes": ["api"], "expires_at": "2000-01-01"}
    )
    assert past.status_code == 400
    assert client.post("/-/user_settings/personal_access_tokens", {"name": "x", "scopes": ["sudo"]}).status_code == 400


def test_project_access_token_creates_bot(project):
    maintainer = member(project)
    client = signed_in(maintainer)
    response = client.post(
        "/acme/tools/-/settings/access_tokens", {"name": "bot", "scopes": ["read_api"], "access_level": "20"}
    )
    assert response.status_code == 200
    secret = secret_in(response.content, "glpat-")
    row = AccessToken.objects.get(kind="project")
    assert row.user.is_bot and row.resource_project == project
    assert Client().get(f"/api/v4/projects/{project.pk}/packages", **auth_headers(secret)).status_code == 200
    assert secret.encode() not in client.get("/acme/tools/-/settings/access_tokens").content
    # Above the caller's own role: refused.
    assert (
        client.post(
            "/acme/tools/-/settings/access_tokens", {"name": "b", "scopes": ["api"], "access_level": "50"}
        ).status_code
        == 400
    )
    assert client.post(f"/acme/tools/-/settings/access_tokens/{row.pk}/revoke").status_code == 302
    row.refresh_from_db()
    assert row.revoked and not row.user.is_active


def test_job_token_allowlist_page(acme, project):
    maintainer = member(project)
    other = ProjectFactory(group=GroupFactory(path="other"), path="ci")
    hidden = ProjectFactory(group=GroupFactory(path="secret"), path="x")
    MembershipFactory(user=maintainer, project=other, access_level=AccessLevel.DEVELOPER)
    client = signed_in(maintainer)
    url = "/acme/tools/-/settings/ci_cd"
    assert client.post(url, {"action": "add", "kind": "project", "path": "secret/x"}).status_code == 400
    assert client.post(url, {"action": "add", "kind": "project", "path": "other/ci"}).status_code == 302
    assert client.post(url, {"action": "add", "kind": "project", "path": "other/ci"}).status_code == 400
    assert client.post(url, {"action": "add", "kind": "group", "path": "other"}).status_code == 302
    links = JobTokenScopeLink.objects.filter(source_project=project)
    assert {(link.target_project_id, link.target_group_id) for link in links} == {
        (other.pk, None),
        (None, other.group_id),
    }
    assert hidden.pk not in [link.target_project_id for link in links]
    page = client.get(url).content.decode()
    assert "other/ci" in page
    link = links.get(target_project=other)
    assert client.post(url, {"action": "remove", "link_id": link.pk}).status_code == 302
    assert not JobTokenScopeLink.objects.filter(pk=link.pk).exists()
    assert client.post(url, {"action": "toggle"}).status_code == 302
    project.refresh_from_db()
    assert project.ci_job_token_scope_enabled is False
    client.post(url, {"action": "toggle", "enabled": "on"})
    project.refresh_from_db()
    assert project.ci_job_token_scope_enabled is True


def test_job_token_allowlist_limit(project):
    maintainer = member(project)
    JobTokenScopeLink.objects.bulk_create(
        [JobTokenScopeLink(source_project=project, target_group=GroupFactory()) for _ in range(200)]
    )
    ProjectFactory(group=GroupFactory(path="other"), path="ci", visibility="public")
    response = signed_in(maintainer).post(
        "/acme/tools/-/settings/ci_cd", {"action": "add", "kind": "project", "path": "other/ci"}
    )
    assert response.status_code == 400
    assert b"at most 200" in response.content


def test_general_settings_allow_anyone_to_pull(project):
    maintainer = member(project)
    version = publish(project, maintainer)
    download = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    assert Client().get(download).status_code == 401
    client = signed_in(maintainer)
    assert (
        client.post(
            "/acme/tools/-/settings/general", {"visibility": "private", "allow_anyone_to_pull": "on"}
        ).status_code
        == 302
    )
    project.refresh_from_db()
    assert project.package_registry_access_level == "public"
    assert Client().get(download).status_code == 200
    client.post("/acme/tools/-/settings/general", {"visibility": "private"})
    project.refresh_from_db()
    assert project.package_registry_access_level == "enabled"
    assert Client().get(download).status_code == 401
    assert version.pk


def test_package_settings_page_validates_regex(project):
    client = signed_in(member(project))
    data = {
        "generic_duplicate_exception_regex": "(",
        "maven_duplicates_allowed": "on",
        "nuget_duplicates_allowed": "on",
    }
    bad = client.post("/acme/tools/-/settings/packages_and_registries", data)
    assert bad.status_code == 400
    assert b"invalid regular expression" in bad.content
    data["generic_duplicate_exception_regex"] = "release-.*"
    assert client.post("/acme/tools/-/settings/packages_and_registries", data).status_code == 302
    rows = {row.format: row for row in DuplicateSetting.objects.filter(project=project)}
    assert rows["generic"].allowed is False and rows["generic"].exception_regex == "release-.*"
    assert rows["maven"].allowed is True and rows["nuget"].allowed is True
    page = client.get("/acme/tools/-/settings/packages_and_registries").content.decode()
    assert page.count('type="checkbox"') == 4 and 'value="release-.*"' in page  # 3 formats, the symbol server
    assert "<td>Generic</td>" in page and "<td>Maven</td>" in page and "<td>NuGet</td>" in page


def test_package_settings_page_switches_the_symbol_server(project):
    client = signed_in(member(project))
    data = {"maven_duplicates_allowed": "on", "nuget_duplicates_allowed": "on", "generic_duplicates_allowed": "on"}
    page = client.get("/acme/tools/-/settings/packages_and_registries").content.decode()
    assert "serve symbol files" in page and 'name="nuget_symbol_server_enabled"' in page
    assert 'name="nuget_symbol_server_enabled" checked' not in page
    assert (
        client.post(
            "/acme/tools/-/settings/packages_and_registries", {**data, "nuget_symbol_server_enabled": "on"}
        ).status_code
        == 302
    )
    assert services.own_settings(project) == {"nuget_symbol_server_enabled": True}
    assert client.post("/acme/tools/-/settings/packages_and_registries", data).status_code == 302
    assert services.own_settings(project) == {"nuget_symbol_server_enabled": False}


def test_admin_console_staff_only_and_bulk_revoke(project):
    token = DeployTokenFactory(project=project)
    assert signed_in(member(project)).get("/admin/").status_code == 302
    admin = signed_in(AdminFactory())
    assert admin.get("/admin/").status_code == 200
    assert admin.get("/admin/accounts/deploytoken/?revoked__exact=0").status_code == 200
    assert admin.get("/admin/registry/packageversion/").status_code == 200
    response = admin.post(
        "/admin/accounts/deploytoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]}, follow=True
    )
    assert b"Revoked 1 token(s)." in response.content
    token.refresh_from_db()
    assert token.revoked


def test_a_project_cannot_be_more_visible_than_its_group(project):
    client = signed_in(member(project))
    response = client.post("/acme/tools/-/settings/general", {"visibility": "public"})
    assert response.status_code == 400
    assert b"not allowed in a private group" in response.content
    project.refresh_from_db()
    assert project.visibility == "private"


def test_rotate_buttons_show_the_successor_once_and_the_old_token_dies(project):
    user = member(project)
    client = signed_in(user)
    secret = secret_in(
        client.post("/-/user_settings/personal_access_tokens", {"name": "laptop", "scopes": ["api"]}).content, "glpat-"
    )
    row = AccessToken.objects.get(user=user)
    assert b"Rotate laptop" in client.get("/-/user_settings/personal_access_tokens").content
    assert signed_in(member()).post(f"/-/user_settings/personal_access_tokens/{row.pk}/rotate").status_code == 404
    rotated = client.post(f"/-/user_settings/personal_access_tokens/{row.pk}/rotate")
    assert rotated.status_code == 200
    successor = secret_in(rotated.content, "glpat-")
    assert successor and successor != secret and b"no longer works" in rotated.content
    packages = f"/api/v4/projects/{project.pk}/packages"
    assert Client().get(packages, **auth_headers(successor)).status_code == 200
    assert successor.encode() not in client.get("/-/user_settings/personal_access_tokens").content

    # A project access token, by a Maintainer; a Developer may not.
    client.post("/acme/tools/-/settings/access_tokens", {"name": "bot", "scopes": ["read_api"], "access_level": "20"})
    bot = AccessToken.objects.get(kind="project", revoked=False)
    developer = signed_in(member(project, AccessLevel.DEVELOPER))
    assert developer.post(f"/acme/tools/-/settings/access_tokens/{bot.pk}/rotate").status_code == 403
    rotated = client.post(f"/acme/tools/-/settings/access_tokens/{bot.pk}/rotate")
    assert rotated.status_code == 200
    bot_successor = secret_in(rotated.content, "glpat-")
    assert Client().get(packages, **auth_headers(bot_successor)).status_code == 200
    bot.refresh_from_db()
    assert bot.revoked and AccessToken.objects.get(previous=bot).user == bot.user
