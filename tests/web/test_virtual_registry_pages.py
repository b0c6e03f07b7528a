"""The "Virtual registries" pages of a top-level group: who may open and change what (a matrix per
page and action: Guest, Reporter, Developer, Maintainer, Owner, non-member, anonymous, as the REST
API's policy answers), and what the pages do, through the API's services and in its words: create
and edit registries and upstreams (secrets written, never shown back), reorder, test a connection
against a real server, list, search and delete cache entries a real pull filled, the client
configuration of each format."""

import base64
import json

import pytest
from django.test import Client

from accounts.models import AuditEvent
from accounts.roles import AccessLevel
from registry import formats, secrets
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualCleanupPolicy, VirtualRegistry
from registry.virtual import claims, services
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, UserFactory, member
from tests.helpers import auth_headers
from tests.upstreams import StaticUpstream
from tests.web.test_management_pages import ROLES, caller, expected, outcome, signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
BASE = "/groups/acme/-/virtual_registries"


@pytest.fixture
def acme():
    return GroupFactory(path="acme", visibility="public")


@pytest.fixture
def registry(acme):
    return VirtualRegistry.objects.create(group=acme, format="maven", name="java", description="all of Java")


def remote(registry, url="http://127.0.0.1:9/repo", **data):
    from registry import formats

    upstream, _ = services.create_remote_upstream(
        registry.group, formats.get(registry.format), {"url": url, **data}, registry=registry
    )
    return upstream


def registry_url(registry):
    return f"{BASE}/{registry.format}/registries/{registry.pk}"


def upstream_url(upstream):
    return f"{BASE}/{upstream.format}/upstreams/{upstream.pk}"


def maven_repository(root):
    (root / "com/acme/app/1.0").mkdir(parents=True)
    (root / "com/acme/app/1.0/app-1.0.jar").write_bytes(b"jar bytes")
    (root / "com/acme/app/1.0/app-1.0.pom").write_bytes(b"<project/>")
    return root


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory):
    """A real Maven repository server (python's http.server) for the whole module."""
    root = maven_repository(tmp_path_factory.mktemp("repo") / "repo")
    server = StaticUpstream(root, log_path=root.parent / "repo.log").start()
    yield server
    server.stop()


@pytest.fixture
def upstream_server(tmp_path):
    """One of its own: a test that stops it."""
    root = maven_repository(tmp_path / "repo")
    server = StaticUpstream(root, log_path=tmp_path / "repo.log").start()
    yield server
    server.stop()


# --- who may do what ------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "answer"), expected("guest", 200).items())
@pytest.mark.parametrize("which", ["overview", "registry", "upstream"])
def test_pages_are_read_by_members_of_the_group(acme, registry, which, who, answer):
    upstream = remote(registry, password="upstream-secret", username="reader")
    path = {"overview": BASE, "registry": registry_url(registry), "upstream": upstream_url(upstream)}[which]
    response = caller(who, acme).get(path)
    assert outcome(response) == answer
    if answer == 200:
        body = response.content.decode()
        assert "java" in body and "upstream-secret" not in body
        # Only Maintainers see the forms that change things.
        writes = ("Add remote upstream", "Create registry", "Save upstream")
        assert any(button in body for button in writes) == (ROLES[who] >= AccessLevel.MAINTAINER)


def test_members_of_a_project_inside_read_but_do_not_write(acme, registry):
    project = ProjectFactory(group=acme, path="tools")
    client = signed_in(member(project, AccessLevel.OWNER))
    assert client.get(registry_url(registry)).status_code == 200
    assert client.post(BASE, {"format": "npm", "name": "web"}).status_code == 403
    assert not VirtualRegistry.objects.filter(name="web").exists()


def write_actions(registry, upstream, link, entry_id):
    """(path, form, check) of each change the pages make, `check()` true once it happened."""
    here = registry_url(registry)
    return {
        "create registry": (
            BASE,
            {"format": "npm", "name": "web"},
            lambda: VirtualRegistry.objects.filter(name="web", format="npm").exists(),
        ),
        "edit registry": (here, {"name": "jvm", "description": ""}, lambda: registry_named("jvm")),
        "add remote upstream": (
            f"{here}/upstreams",
            {"url": "http://127.0.0.1:10/other", "name": "other"},
            lambda: Upstream.objects.filter(name="other").exists(),
        ),
        "move down": (f"{here}/registry_upstreams/{link.pk}/down", {}, lambda: position_of(upstream) == 2),
        "test connection": (f"{upstream_url(upstream)}/test", {}, lambda: True),
        "edit upstream": (upstream_url(upstream), {"url": upstream.url, "name": "renamed"}, lambda: renamed(upstream)),
        "delete cache entry": (
            f"{upstream_url(upstream)}/cache_entries/delete",
            {"entry": entry_id},
            lambda: not CacheEntry.objects.filter(status="default").exists(),
        ),
        "empty registry cache": (
            f"{here}/cache/delete",
            {},
            lambda: not CacheEntry.objects.filter(status="default").exists(),
        ),
        "delete registry": (f"{here}/delete", {}, lambda: not VirtualRegistry.objects.filter(pk=registry.pk).exists()),
    }


def registry_named(name):
    return VirtualRegistry.objects.filter(name=name).exists()


def position_of(upstream):
    return RegistryUpstream.objects.get(upstream=upstream).position


def renamed(upstream):
    return Upstream.objects.get(pk=upstream.pk).name == "renamed"


ACTIONS = [
    "create registry",
    "edit registry",
    "add remote upstream",
    "move down",
    "test connection",
    "edit upstream",
    "delete cache entry",
    "empty registry cache",
    "delete registry",
]


@pytest.mark.parametrize(("who", "answer"), expected("maintainer", 302).items())
@pytest.mark.parametrize("action", ACTIONS)
def test_changes_are_for_maintainers(acme, registry, repo_server, action, who, answer):
    upstream = remote(registry, url=repo_server.url)
    second = remote(registry, url="http://127.0.0.1:11/second")
    link = RegistryUpstream.objects.get(upstream=upstream)
    assert RegistryUpstream.objects.get(upstream=second).position == 2
    token = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.GUEST)).plaintext)
    pulled = Client().get(
        f"/api/v4/virtual_registries/packages/maven/{registry.pk}/com/acme/app/1.0/app-1.0.jar", **token
    )
    assert pulled.status_code == 200
    entry_id = base64.urlsafe_b64encode(f"{upstream.pk} /com/acme/app/1.0/app-1.0.jar".encode()).decode()
    path, form, done = write_actions(registry, upstream, link, entry_id)[action]
    response = caller(who, acme).post(path, form)
    assert outcome(response) == answer
    if action != "test connection":
        assert done() == (answer == 302)


@pytest.mark.parametrize(("who", "answer"), expected("owner", 302).items())
def test_the_cleanup_policy_is_for_owners(acme, who, answer):
    client = caller(who, acme)
    form = {"enabled": "on", "keep_n_days_after_download": "14", "cadence": "30"}
    assert outcome(client.post(f"{BASE}/cleanup", form)) == answer
    policy = VirtualCleanupPolicy.objects.filter(group=acme).first()
    assert (policy is not None) == (answer == 302)
    if policy is not None:
        assert (policy.enabled, policy.keep_n_days_after_download, policy.cadence) == (True, 14, 30)
        assert policy.next_run_at is not None
        page = client.get(BASE).content.decode()
        assert "Save cleanup policy" in page and "Next run" in page
    elif who in ("maintainer", "developer"):
        assert "Save cleanup policy" not in client.get(BASE).content.decode()


def test_the_cleanup_policy_refuses_what_the_api_refuses(acme):
    owner = signed_in(member(acme, AccessLevel.OWNER))
    response = owner.post(f"{BASE}/cleanup", {"keep_n_days_after_download": "400", "cadence": "7"})
    assert response.status_code == 400
    assert "Keep_n_days_after_download does not have a valid value" in response.content.decode()
    assert not VirtualCleanupPolicy.objects.exists()


def test_what_is_not_there(acme, registry):
    maintainer = signed_in(member(acme, AccessLevel.MAINTAINER))
    sub = GroupFactory(path="sub", parent=acme)
    sub.refresh_from_db()
    assert maintainer.get(f"/groups/{sub.full_path}/-/virtual_registries").status_code == 404  # subgroups have none
    assert maintainer.get("/groups/nope/-/virtual_registries").status_code == 404
    assert maintainer.get(f"{BASE}/generic/registries/{registry.pk}").status_code == 404  # no virtual support
    assert maintainer.get(f"{BASE}/npm/registries/{registry.pk}").status_code == 404  # another format's id
    other = VirtualRegistry.objects.create(group=GroupFactory(path="other"), format="maven", name="theirs")
    assert maintainer.get(f"{BASE}/maven/registries/{other.pk}").status_code == 404
    assert maintainer.post(f"{BASE}/maven/registries/{other.pk}/delete").status_code == 404
    assert VirtualRegistry.objects.filter(pk=other.pk).exists()
    assert Client().get(f"/groups/{sub.full_path}/-/virtual_registries").status_code == 302  # sign in first


def test_forms_need_the_csrf_token(acme, registry):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member(acme, AccessLevel.OWNER))
    assert strict.post(f"{registry_url(registry)}/delete").status_code == 403
    assert strict.post(BASE, {"format": "npm", "name": "web"}).status_code == 403
    assert VirtualRegistry.objects.count() == 1


def test_the_tab_shows_on_top_level_groups_for_members(acme):
    sub = GroupFactory(path="sub", parent=acme)
    sub.refresh_from_db()
    guest = signed_in(member(acme, AccessLevel.GUEST))
    assert f'href="{BASE}"' in guest.get("/groups/acme/-/packages").content.decode()
    assert "virtual_registries" not in guest.get(f"/groups/{sub.full_path}/-/packages").content.decode()
    stranger = signed_in(UserFactory())
    assert "virtual_registries" not in stranger.get("/groups/acme/-/packages").content.decode()


# --- what the pages do ----------------------------------------------------------------------------


def test_create_a_registry_and_its_upstreams(acme):
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    response = client.post(BASE, {"format": "npm", "name": "web", "description": "front end"})
    registry = VirtualRegistry.objects.get(name="web")
    assert response["Location"] == registry_url(registry)
    duplicate = client.post(BASE, {"format": "npm", "name": "web"})
    assert duplicate.status_code == 400 and "Name has already been taken" in duplicate.content.decode()

    here = registry_url(registry)
    refused = client.post(f"{here}/upstreams", {"url": "ftp://example.com/npm"})
    assert refused.status_code == 400
    assert "URL is blocked: only https URLs are allowed" in refused.content.decode()
    half = client.post(f"{here}/upstreams", {"url": "http://127.0.0.1:9/npm", "username": "me"})
    assert half.status_code == 400 and "Password can&#x27;t be blank" in half.content.decode()
    both = {"url": "http://127.0.0.1:9/npm", "auth_token": "npm-secret", "username": "me", "password": "pw"}
    assert (
        "Auth token can&#x27;t be used with username and password"
        in client.post(f"{here}/upstreams", both).content.decode()
    )
    assert not Upstream.objects.exists()

    form = {"url": "http://127.0.0.1:9/npm/", "auth_token": "npm-secret", "metadata_cache_validity_hours": "2"}
    assert client.post(f"{here}/upstreams", form).status_code == 302
    npm = Upstream.objects.get()
    assert (npm.url, npm.name, npm.metadata_cache_validity_hours) == ("http://127.0.0.1:9/npm", "127.0.0.1", 2)
    assert npm.negative_cache_minutes == 2  # the format's default, as through the API
    assert secrets.decrypt(npm.auth_token_encrypted) == "npm-secret"

    project = ProjectFactory(group=acme, path="web-lib")
    local = {"target": f"project:{project.pk}", "name": "ours"}
    assert client.post(f"{here}/local_upstreams", local).status_code == 302
    again = client.post(f"{here}/local_upstreams", {**local, "name": "twice"})
    assert "The group already has a local upstream for this target" in again.content.decode()
    assert client.post(f"{here}/local_upstreams", {"target": f"group:{acme.pk}", "name": "all"}).status_code == 302
    assert [link.upstream.name for link in RegistryUpstream.objects.filter(registry=registry)] == [
        "127.0.0.1",
        "ours",
        "all",
    ]
    page = client.get(here).content.decode()
    assert "npm-secret" not in page and "(credentials set)" in page
    assert f"project {project.full_path}" in page and "group acme" in page


def test_reorder_remove_and_link_again(acme, registry):
    first, second = remote(registry, name="first"), remote(registry, url="http://127.0.0.1:10/b", name="second")
    third = remote(registry, url="http://127.0.0.1:11/c", name="third")
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    here = registry_url(registry)

    def order():
        return [link.upstream.name for link in RegistryUpstream.objects.filter(registry=registry).order_by("position")]

    link = RegistryUpstream.objects.get(upstream=third)
    assert client.post(f"{here}/registry_upstreams/{link.pk}/up").status_code == 302
    assert order() == ["first", "third", "second"]
    assert client.post(f"{here}/registry_upstreams/{link.pk}/up").status_code == 302
    assert order() == ["third", "first", "second"]
    top = client.post(f"{here}/registry_upstreams/{link.pk}/up", follow=True)
    assert "Position must be between 1 and 3" in top.content.decode() and order() == ["third", "first", "second"]
    page = client.get(here).content.decode()
    assert "Move third down" in page and "Move third up" not in page and "Move second down" not in page

    unlink = RegistryUpstream.objects.get(upstream=first)
    assert client.post(f"{here}/registry_upstreams/{unlink.pk}/delete").status_code == 302
    assert order() == ["third", "second"] and Upstream.objects.filter(pk=first.pk).exists()
    assert client.post(f"{here}/registry_upstreams", {"upstream": first.pk}).status_code == 302
    assert order() == ["third", "second", "first"]
    assert client.post(f"{here}/registry_upstreams", {"upstream": second.pk}).status_code == 400  # already in it


def test_removing_a_local_upstream_is_on_the_groups_audit_page(acme, registry):
    project = ProjectFactory(group=acme, path="libs")
    maintainer = signed_in(member(acme, AccessLevel.MAINTAINER))
    here = registry_url(registry)
    assert (
        maintainer.post(f"{here}/local_upstreams", {"target": f"project:{project.pk}", "name": "ours"}).status_code
        == 302
    )
    link = RegistryUpstream.objects.get(registry=registry)
    assert maintainer.post(f"{here}/registry_upstreams/{link.pk}/delete").status_code == 302
    audit = signed_in(member(acme, AccessLevel.OWNER)).get("/groups/acme/-/audit_events").content.decode()
    assert "virtual_registry_local_upstream_unlinked" in audit
    upstream = Upstream.objects.get(name="ours")
    assert maintainer.post(f"{upstream_url(upstream)}/delete").status_code == 302
    audit = signed_in(member(acme, AccessLevel.OWNER)).get("/groups/acme/-/audit_events").content.decode()
    assert "virtual_registry_local_upstream_deleted" in audit


def test_edit_an_upstream_without_ever_seeing_its_secret(acme, registry):
    upstream = remote(registry, url="http://127.0.0.1:9/repo", username="deployer", password="first-secret")
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    path = upstream_url(upstream)
    page = client.get(path).content.decode()
    assert "first-secret" not in page and 'value="deployer"' in page and "set (username deployer)" in page

    # Saved without a password: the stored one stays.
    kept = {"url": upstream.url, "username": "deployer", "name": "central", "cache_validity_hours": "12"}
    assert client.post(path, kept).status_code == 302
    upstream.refresh_from_db()
    assert (upstream.name, upstream.cache_validity_hours) == ("central", 12)
    assert secrets.decrypt(upstream.password_encrypted) == "first-secret"
    # A new password is stored, never shown.
    assert client.post(path, {**kept, "password": "second-secret"}).status_code == 302
    upstream.refresh_from_db()
    assert secrets.decrypt(upstream.password_encrypted) == "second-secret"
    assert "second-secret" not in client.get(path).content.decode()
    # A new URL without credentials clears them (GitLab's rule, the API's service).
    assert client.post(path, {**kept, "url": "http://127.0.0.1:10/moved"}).status_code == 302
    upstream.refresh_from_db()
    assert (upstream.url, upstream.username, upstream.has_credentials) == ("http://127.0.0.1:10/moved", "", False)
    # Credentials again, then removed with the checkbox.
    again = {**kept, "url": upstream.url, "username": "deployer", "password": "third-secret"}
    assert client.post(path, again).status_code == 302
    upstream.refresh_from_db()
    assert upstream.has_credentials
    assert client.post(path, {**again, "password": "", "clear_credentials": "on"}).status_code == 302
    upstream.refresh_from_db()
    assert (upstream.username, upstream.has_credentials) == ("", False)
    refused = client.post(path, {**kept, "url": "http://127.0.0.1:10/moved", "metadata_cache_validity_hours": "0"})
    assert refused.status_code == 400
    assert "Metadata cache validity (hours) must be greater than 0" in refused.content.decode()


def test_test_connection_against_a_real_server(acme, registry, upstream_server):
    upstream = remote(registry, url=upstream_server.url, name="repo")
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    here = registry_url(registry)
    ok = client.post(f"{upstream_url(upstream)}/test", {"next": here}, follow=True)
    assert ok.redirect_chain[-1][0] == here
    assert "Connection to repo succeeded." in ok.content.decode()
    assert any(line.startswith("HEAD ") for line in upstream_server.requests())
    upstream_server.stop()
    down = client.post(f"{upstream_url(upstream)}/test", {"next": "https://elsewhere.example/"}, follow=True)
    assert down.redirect_chain[-1][0] == upstream_url(upstream)  # never sent off the group's pages
    assert "Connection to repo failed: Error: " in down.content.decode()


def test_health_is_shown(acme, registry):
    upstream = remote(registry, name="flaky")
    Upstream.objects.filter(pk=upstream.pk).update(
        consecutive_failures=3,
        last_error="connection refused",
        health_checked_at="2026-11-30T10:00:00Z",
        retry_at="2099-01-01T00:00:00Z",
    )
    page = signed_in(member(acme, AccessLevel.GUEST)).get(registry_url(registry)).content.decode()
    assert "backing off</span> until 2099-01-01 00:00:00 UTC" in page
    assert "Last error: connection refused (2026-11-30 10:00:00 UTC)" in page
    Upstream.objects.filter(pk=upstream.pk).update(consecutive_failures=0, last_error="", retry_at=None)
    page = signed_in(member(acme, AccessLevel.GUEST)).get(registry_url(registry)).content.decode()
    assert '<span class="badge healthy">healthy</span>' in page


def test_cache_entries_after_a_real_pull_searched_and_deleted(acme, registry, repo_server):
    upstream = remote(registry, url=repo_server.url, name="repo")
    token = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.GUEST)).plaintext)
    for name in ("app-1.0.jar", "app-1.0.pom"):
        pulled = Client().get(
            f"/api/v4/virtual_registries/packages/maven/{registry.pk}/com/acme/app/1.0/{name}", **token
        )
        assert pulled.status_code == 200
    reader = signed_in(member(acme, AccessLevel.REPORTER))
    page = reader.get(upstream_url(upstream)).content.decode()
    assert "/com/acme/app/1.0/app-1.0.jar" in page and "/com/acme/app/1.0/app-1.0.pom" in page
    assert "2 entries" in page and "Delete cache entry" not in page
    assert "2 entries" in reader.get(registry_url(registry)).content.decode()
    searched = reader.get(upstream_url(upstream), {"search": ".pom"}).content.decode()
    assert "app-1.0.pom" in searched and "app-1.0.jar" not in searched

    maintainer = signed_in(member(acme, AccessLevel.MAINTAINER))
    jar = base64.urlsafe_b64encode(f"{upstream.pk} /com/acme/app/1.0/app-1.0.jar".encode()).decode()
    next_page = f"{upstream_url(upstream)}?search=app"
    deleted = maintainer.post(f"{upstream_url(upstream)}/cache_entries/delete", {"entry": jar, "next": next_page})
    assert deleted["Location"] == next_page
    assert list(CacheEntry.objects.filter(status="default").values_list("relative_path", flat=True)) == [
        "/com/acme/app/1.0/app-1.0.pom"
    ]
    # The API sees what the page did.
    listed = Client().get(f"/api/v4/virtual_registries/packages/maven/upstreams/{upstream.pk}/cache_entries", **token)
    assert [e["relative_path"] for e in listed.json()] == ["/com/acme/app/1.0/app-1.0.pom"]
    assert maintainer.post(f"{upstream_url(upstream)}/cache_entries/delete", {"entry": jar}).status_code == 404
    someone_elses = base64.urlsafe_b64encode(f"{upstream.pk + 1} /x".encode()).decode()
    assert (
        maintainer.post(f"{upstream_url(upstream)}/cache_entries/delete", {"entry": someone_elses}).status_code == 404
    )
    assert maintainer.post(f"{upstream_url(upstream)}/cache/delete").status_code == 302
    assert not CacheEntry.objects.filter(status="default").exists()


@pytest.mark.parametrize(
    ("fmt", "title", "expected_line"),
    [
        ("npm", ".npmrc", "registry={endpoint}/"),
        ("pypi", "pip.conf", "index-url = http://__token__:${{TOKEN}}@testserver/{path}/simple/"),
        ("maven", "settings.xml", "<url>{endpoint}</url>"),
        ("nuget", "nuget.config", '<add key="packhouse-virtual" value="{endpoint}/index.json" />'),
    ],
)
def test_client_configuration_of_each_format(acme, fmt, title, expected_line):
    registry = VirtualRegistry.objects.create(group=acme, format=fmt, name="r")
    page = signed_in(member(acme, AccessLevel.GUEST)).get(registry_url(registry)).content.decode()
    path = f"api/v4/virtual_registries/packages/{fmt}/{registry.pk}"
    line = expected_line.format(endpoint=f"http://testserver/{path}", path=path)
    from html import escape

    assert f'aria-label="Copy {title}"' in page
    assert escape(line) in page


# --- the API's other fields: registry options, namespace claims, rules ------------------------------


def test_registry_settings_and_the_formats_own_options(acme, registry, api):
    """retain_removed_versions on every registry, and only the format's own options (Maven's
    merge_maven_metadata, declared by the format): shown to members, changed by Maintainers, the
    API sees what the page did."""
    maintainer_user = member(acme, AccessLevel.MAINTAINER)
    client = signed_in(maintainer_user)
    here = registry_url(registry)
    page = client.get(here).content.decode()
    assert 'name="merge_maven_metadata"' in page and 'name="retain_removed_versions"' in page
    saved = {"name": "java", "description": "", "merge_maven_metadata": "on", "retain_removed_versions": "on"}
    assert client.post(here, saved).status_code == 302
    headers = auth_headers(AccessTokenFactory(user=maintainer_user).plaintext)
    body = api.get(f"/api/v4/virtual_registries/packages/maven/registries/{registry.pk}", **headers).json()
    assert (body["merge_maven_metadata"], body["retain_removed_versions"]) == (True, True)
    guest = signed_in(member(acme, AccessLevel.GUEST)).get(here).content.decode()
    assert "Merge maven-metadata.xml from every upstream" in guest and 'name="merge_maven_metadata"' not in guest
    settings_table = guest.split('aria-label="Registry settings"', 1)[1].split("</table>", 1)[0]
    assert settings_table.count("<td>on</td>") == 2
    # Unchecked boxes turn them off again.
    assert client.post(here, {"name": "java", "description": ""}).status_code == 302
    registry.refresh_from_db()
    assert (registry.options, registry.retain_removed_versions) == ({"merge_maven_metadata": False}, False)

    npm = VirtualRegistry.objects.create(group=acme, format="npm", name="web")
    npm_page = client.get(registry_url(npm)).content.decode()
    assert "merge_maven_metadata" not in npm_page and "maven-metadata" not in npm_page
    assert 'name="retain_removed_versions"' in npm_page
    assert client.post(registry_url(npm), {"name": "web", "merge_maven_metadata": "on"}).status_code == 302
    npm.refresh_from_db()
    assert npm.options == {}  # not an npm option: not stored
    created = client.post(BASE, {"format": "pypi", "name": "py", "retain_removed_versions": "on"})
    assert created.status_code == 302 and VirtualRegistry.objects.get(name="py").retain_removed_versions


@pytest.fixture
def npm_local(acme):
    """An npm registry with a local upstream claiming @partner (and the group's own @acme)."""
    registry = VirtualRegistry.objects.create(group=acme, format="npm", name="web")
    project = ProjectFactory(group=acme, path="web-lib")
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    form = {"target": f"project:{project.pk}", "name": "ours", "claimed_scopes": "@Bad!"}
    refused = client.post(f"{registry_url(registry)}/local_upstreams", form)
    assert refused.status_code == 400 and "Claimed scopes &#x27;@Bad!&#x27; is not valid" in refused.content.decode()
    form["claimed_scopes"] = "partner"
    assert client.post(f"{registry_url(registry)}/local_upstreams", form).status_code == 302
    return Upstream.objects.get(name="ours")


def test_claimed_namespaces_are_edited_with_the_local_upstream(acme, npm_local, api):
    path = upstream_url(npm_local)
    assert claims.scope_claims(npm_local, formats.get("npm").virtual) == ["@acme", "@partner"]
    guest = signed_in(member(acme, AccessLevel.GUEST)).get(path).content.decode()
    assert "Claimed scopes" in guest and "<code>@acme</code>, <code>@partner</code>" in guest
    assert 'name="claimed_scopes"' not in guest

    maintainer = signed_in(member(acme, AccessLevel.MAINTAINER))
    page = maintainer.get(path).content.decode()
    assert 'name="claimed_scopes" value="@acme, @partner"' in page
    assert "Claimed group ids" not in page and "Claimed id prefixes" not in page  # other formats' fields
    # Adding one is a Maintainer's edit; dropping one releases its claim: Owners only (the API's rule).
    assert maintainer.post(path, {"name": "ours", "claimed_scopes": "@acme, @partner, @vendor"}).status_code == 302
    dropping = {"name": "ours", "claimed_scopes": "@acme"}
    refused = maintainer.post(path, dropping)
    assert refused.status_code == 403 and "Only Owners may remove a claimed namespace" in refused.content.decode()
    owner_user = member(acme, AccessLevel.OWNER)
    headers = auth_headers(AccessTokenFactory(user=owner_user).plaintext)
    api_path = f"/api/v4/virtual_registries/packages/npm/local/upstreams/{npm_local.pk}"
    assert api.get(api_path, **headers).json()["claimed_scopes"] == ["@acme", "@partner", "@vendor"]
    assert signed_in(owner_user).post(path, dropping).status_code == 302
    assert api.get(api_path, **headers).json()["claimed_scopes"] == ["@acme"]
    released = AuditEvent.objects.filter(action="virtual_registry_claim_released").order_by("target_details")
    assert [event.target_details for event in released] == ["@partner", "@vendor"]


@pytest.mark.parametrize(("who", "answer"), expected("owner", 302).items())
def test_claims_are_listed_and_released_by_owners(acme, npm_local, who, answer):
    client = caller(who, acme)
    claim = npm_local.claims.get(name="@partner")
    page = client.get(upstream_url(npm_local))
    if outcome(page) == 200:
        assert ("Release claim @partner" in page.content.decode()) == (answer == 302)
    response = client.post(f"{upstream_url(npm_local)}/claims/{claim.pk}/delete")
    assert outcome(response) == answer
    assert npm_local.claims.filter(pk=claim.pk).exists() == (answer != 302)
    if answer == 302:
        assert client.post(f"{upstream_url(npm_local)}/claims/{claim.pk}/delete").status_code == 404


def rules_form(**values):
    return {"rule_type": "deny", "target": "group_id", "pattern_type": "wildcard", "pattern": "com.evil.*", **values}


@pytest.mark.parametrize(("who", "answer"), expected("maintainer", 302).items())
def test_rules_are_for_maintainers(acme, registry, who, answer):
    upstream = remote(registry)
    existing = services.add_rule(upstream, formats.get("maven").virtual, rules_form())
    client = caller(who, acme)
    page = client.get(upstream_url(upstream))
    if outcome(page) == 200:
        assert ("com.evil.*" in page.content.decode()) == (answer == 302)  # the API lists them to Maintainers
    added = client.post(f"{upstream_url(upstream)}/rules", rules_form(pattern="org.bad.*"))
    assert outcome(added) == answer
    deleted = client.post(f"{upstream_url(upstream)}/rules/{existing.pk}/delete")
    assert outcome(deleted) == answer
    patterns = sorted(upstream.rules.values_list("pattern", flat=True))
    assert patterns == (["org.bad.*"] if answer == 302 else ["com.evil.*"])


def test_rules_are_checked_as_the_api_checks_them(acme, registry, api):
    upstream = remote(registry)
    maintainer_user = member(acme, AccessLevel.MAINTAINER)
    client = signed_in(maintainer_user)
    path = f"{upstream_url(upstream)}/rules"
    page = client.get(upstream_url(upstream)).content.decode()
    assert '<option value="artifact_id">' in page and '<option value="scope">' not in page  # Maven's targets
    backreference = client.post(path, rules_form(pattern_type="regex", pattern=r"(a)\1"))
    assert backreference.status_code == 400
    assert "Pattern is not a regular expression RE2 accepts" in backreference.content.decode()
    wrong_target = client.post(path, rules_form(target="scope"))
    assert (
        wrong_target.status_code == 400 and "scope is not one of the available choices" in wrong_target.content.decode()
    )
    regex = client.post(
        path, rules_form(rule_type="allow", target="artifact_id", pattern_type="regex", pattern="app|lib")
    )
    assert regex.status_code == 302
    headers = auth_headers(AccessTokenFactory(user=maintainer_user).plaintext)
    listed = api.get(f"/api/v4/virtual_registries/packages/maven/upstreams/{upstream.pk}/rules", **headers).json()
    assert [(r["rule_type"], r["target"], r["pattern_type"], r["pattern"]) for r in listed] == [
        ("allow", "artifact_id", "regex", "app|lib")
    ]
    for number in range(19):
        assert client.post(path, rules_form(pattern=f"com.x{number}.*")).status_code == 302
    full = client.post(path, rules_form(pattern="one.too.many"))
    assert full.status_code == 400 and "Rules must be at most 20 per upstream" in full.content.decode()
    assert upstream.rules.count() == 20
    rule = upstream.rules.get(pattern="app|lib")
    assert client.post(f"{upstream_url(upstream)}/rules/{rule.pk}/delete").status_code == 302
    assert client.post(f"{upstream_url(upstream)}/rules/{rule.pk}/delete").status_code == 404
    local = Upstream.objects.create(group=acme, format="maven", kind="local", name="l", local_group=acme)
    assert client.post(f"{upstream_url(local)}/rules", rules_form()).status_code == 404  # no rules on local ones


def test_a_local_upstream_has_no_cache_to_empty(acme, registry):
    """A local upstream's packages are the group's own: emptying its cache or deleting one of its
    cache entries is 404 to a Maintainer, as the API answers, and changes nothing."""
    local = Upstream.objects.create(group=acme, format="maven", kind="local", name="l", local_group=acme)
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    assert client.post(f"{upstream_url(local)}/cache/delete").status_code == 404
    assert client.post(f"{upstream_url(local)}/cache_entries/delete", {"entry": 1}).status_code == 404
    assert Upstream.objects.filter(pk=local.pk).exists()


# --- issue 16: audit events, file hosts, a format's options on creation -----------------------------


def test_a_credential_change_on_the_upstream_page_is_audited_without_the_secret(acme, registry):
    """The page writes through the API's service, so it records the same events: the password
    named as changed, never its value, on the group's audit page too."""
    upstream = remote(registry, username="deployer", password="Pq5-first-secret")
    maintainer_user = member(acme, AccessLevel.MAINTAINER)
    client = signed_in(maintainer_user)
    form = {"url": upstream.url, "username": "deployer", "name": upstream.name, "password": "Jx2-second-secret"}
    assert client.post(upstream_url(upstream), form).status_code == 302
    [event] = AuditEvent.objects.filter(action__startswith="virtual_registry_upstream_").exclude(
        action="virtual_registry_upstream_created"
    )
    assert (event.action, event.author_id, event.entity_id) == (
        "virtual_registry_upstream_credentials_changed",
        maintainer_user.pk,
        acme.pk,
    )
    assert event.details["credentials"] == [{"change": "password", "action": "changed"}]
    audit = signed_in(member(acme, AccessLevel.OWNER)).get("/groups/acme/-/audit_events").content.decode()
    assert "virtual_registry_upstream_credentials_changed" in audit and "password changed" in audit
    stored = [json.dumps(e.details) + e.target_details for e in AuditEvent.objects.all()]
    for secret in ("Pq5-first-secret", "Jx2-second-secret"):
        assert secret not in audit and not any(secret[:4] in text for text in stored)
    # Saved again without a password: nothing changed, nothing recorded.
    assert client.post(upstream_url(upstream), {**form, "password": ""}).status_code == 302
    assert AuditEvent.objects.filter(action="virtual_registry_upstream_credentials_changed").count() == 1


def test_file_hosts_on_the_remote_upstream_form(acme, registry):
    """The API's `file_hosts` (services.file_hosts_param checks them): set on creation, shown and
    changed on edit, refused in the API's words."""
    client = signed_in(member(acme, AccessLevel.MAINTAINER))
    here = registry_url(registry)
    assert 'name="file_hosts"' in client.get(here).content.decode()
    bad = client.post(f"{here}/upstreams", {"url": "http://127.0.0.1:9/repo", "file_hosts": "http://files.example/x"})
    assert bad.status_code == 400 and "File hosts &#x27;http://files.example/x&#x27;" in bad.content.decode()
    assert not Upstream.objects.exists()
    form = {"url": "http://127.0.0.1:9/repo", "file_hosts": "Files.Example, 127.0.0.2:8080"}
    assert client.post(f"{here}/upstreams", form).status_code == 302
    upstream = Upstream.objects.get()
    assert upstream.file_hosts == ["files.example", "127.0.0.2:8080"]
    page = client.get(upstream_url(upstream)).content.decode()
    assert 'value="files.example, 127.0.0.2:8080"' in page
    edit = {"url": upstream.url, "name": upstream.name, "file_hosts": "files.example, cdn.example"}
    assert client.post(upstream_url(upstream), edit).status_code == 302
    upstream.refresh_from_db()
    assert upstream.file_hosts == ["files.example", "cdn.example"]
    refused = client.post(upstream_url(upstream), {**edit, "file_hosts": "u:p@cdn.example"})
    assert refused.status_code == 400 and "File hosts &#x27;u:p@cdn.example&#x27;" in refused.content.decode()
    assert client.post(upstream_url(upstream), {**edit, "file_hosts": ""}).status_code == 302
    upstream.refresh_from_db()
    assert upstream.file_hosts == []


def test_a_new_registry_with_the_formats_own_options(acme, api):
    """`<format>/registries/new`: the format's own options on creation (Maven's
    merge_maven_metadata), Maintainer+; the API sees what the page did."""
    maintainer_user = member(acme, AccessLevel.MAINTAINER)
    client = signed_in(maintainer_user)
    overview = client.get(BASE).content.decode()
    assert f'href="{BASE}/maven/registries/new"' in overview and f'href="{BASE}/npm/registries/new"' in overview
    new = f"{BASE}/maven/registries/new"
    page = client.get(new).content.decode()
    assert 'name="merge_maven_metadata"' in page and 'name="retain_removed_versions"' in page
    assert 'name="format"' not in page
    assert 'name="merge_maven_metadata"' not in client.get(f"{BASE}/npm/registries/new").content.decode()
    form = {"name": "jvm", "description": "all of it", "merge_maven_metadata": "on"}
    response = client.post(new, form)
    registry = VirtualRegistry.objects.get(name="jvm")
    assert response.status_code == 302 and response["Location"] == registry_url(registry)
    assert (registry.format, registry.options, registry.retain_removed_versions) == (
        "maven",
        {"merge_maven_metadata": True},
        False,
    )
    headers = auth_headers(AccessTokenFactory(user=maintainer_user).plaintext)
    body = api.get(f"/api/v4/virtual_registries/packages/maven/registries/{registry.pk}", **headers).json()
    assert body["merge_maven_metadata"] is True
    assert AuditEvent.objects.get(action="virtual_registry_created").details["settings"]["merge_maven_metadata"]
    again = client.post(new, form)
    assert again.status_code == 400 and "Name has already been taken" in again.content.decode()
    assert client.post(f"{BASE}/npm/registries/new", {"name": "web", "merge_maven_metadata": "on"}).status_code == 302
    assert VirtualRegistry.objects.get(name="web").options == {}  # not an npm option
    # Who: Maintainers; members below get 403, others 404; an unknown format 404.
    developer = signed_in(member(acme, AccessLevel.DEVELOPER))
    assert developer.get(new).status_code == 403 and developer.post(new, {"name": "d"}).status_code == 403
    assert signed_in(UserFactory()).get(new).status_code == 404
    assert client.get(f"{BASE}/nope/registries/new").status_code == 404
    assert not VirtualRegistry.objects.filter(name="d").exists()
