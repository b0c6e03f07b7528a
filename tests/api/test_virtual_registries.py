"""Virtual registries' management API (spec/virtual-registries.md §1): registries, upstreams,
order, test connection, cache entries, with GitLab's shapes, messages and permissions."""

import base64
import json

import pytest
from django.db import connection

from accounts.models import AuditEvent
from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualRegistry
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    CiJobFactory,
    DeployTokenFactory,
    GroupFactory,
    ProjectFactory,
    UserFactory,
    bot_token,
    member,
)
from tests.helpers import auth_headers
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
FMT = "maven"  # any format with virtual support; the API names none


@pytest.fixture
def acme():
    return GroupFactory(path="acme", visibility="public")


def token(user, scopes=("api",)):
    return auth_headers(AccessTokenFactory(user=user, scopes=list(scopes)).plaintext)


@pytest.fixture
def maintainer(acme):
    return token(member(acme, AccessLevel.MAINTAINER))


def group_url(group, what):
    return f"/api/v4/groups/{group.pk}/-/virtual_registries/packages/{FMT}/{what}"


def url(what):
    return f"/api/v4/virtual_registries/packages/{FMT}/{what}"


def create_registry(api, group, headers, name="main"):
    response = api.post(group_url(group, "registries"), {"name": name}, format="json", **headers)
    assert response.status_code == 201, response.content
    return response.json()


def create_upstream(api, registry_id, headers, **body):
    body.setdefault("url", "http://127.0.0.1:9/maven2")
    response = api.post(url(f"registries/{registry_id}/upstreams"), body, format="json", **headers)
    assert response.status_code == 201, response.content
    return response.json()


# --- registries ---------------------------------------------------------------------------------


def test_registry_lifecycle(api, acme, maintainer):
    created = create_registry(api, acme, maintainer)
    assert set(created) == {
        "id",
        "group_id",
        "name",
        "description",
        "retain_removed_versions",
        "merge_maven_metadata",  # the format's own option (VirtualSupport.registry_options)
        "created_at",
        "updated_at",
    }
    assert created["retain_removed_versions"] is False
    assert created["group_id"] == acme.pk and created["name"] == "main"
    listed = api.get(group_url(acme, "registries"), **maintainer).json()
    assert [r["id"] for r in listed] == [created["id"]]
    patched = api.patch(url(f"registries/{created['id']}"), {"description": "all"}, format="json", **maintainer)
    assert patched.status_code == 200 and patched.json()["description"] == "all"
    assert api.delete(url(f"registries/{created['id']}"), **maintainer).status_code == 204
    assert not VirtualRegistry.objects.exists()


def test_registry_validation(api, acme, maintainer):
    missing = api.post(group_url(acme, "registries"), {}, format="json", **maintainer)
    assert missing.status_code == 400 and missing.json() == {"error": "name is missing"}
    create_registry(api, acme, maintainer)
    taken = api.post(group_url(acme, "registries"), {"name": "main"}, format="json", **maintainer)
    assert taken.status_code == 400 and taken.json() == {"message": {"name": ["has already been taken"]}}
    for n in range(19):
        create_registry(api, acme, maintainer, name=f"r{n}")
    over = api.post(group_url(acme, "registries"), {"name": "r21"}, format="json", **maintainer)
    assert over.status_code == 400 and list(over.json()["message"]) == ["group"]
    assert VirtualRegistry.objects.count() == 20


def test_unknown_format_is_404(api, acme, maintainer):
    response = api.get(f"/api/v4/groups/{acme.pk}/-/virtual_registries/packages/cobol/registries", **maintainer)
    assert response.status_code == 404


# --- permissions -----------------------------------------------------------------------------------


def test_permissions(api, acme, maintainer):
    registry = create_registry(api, acme, maintainer)
    registries = group_url(acme, "registries")
    one = url(f"registries/{registry['id']}")
    project = ProjectFactory(group=acme)
    sub = GroupFactory(parent=acme, path="sub")

    anonymous = api.get(registries)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Basic")
    assert api.get(one).status_code == 401
    # A signed-in stranger sees nothing, even of a public group.
    stranger = token(UserFactory())
    assert api.get(registries, **stranger).status_code == 404
    assert api.get(one, **stranger).status_code == 404
    # Guests read; Developers read but do not write; Maintainers write.
    guest = token(member(acme, AccessLevel.GUEST))
    assert api.get(one, **guest).status_code == 200
    developer = token(member(acme, AccessLevel.DEVELOPER))
    assert api.get(registries, **developer).status_code == 200
    assert api.patch(one, {"name": "x"}, format="json", **developer).status_code == 403
    assert api.post(registries, {"name": "x"}, format="json", **developer).status_code == 403
    # A member of a project inside the group reads.
    assert api.get(one, **token(member(project, AccessLevel.REPORTER))).status_code == 200
    # A subgroup is no target.
    assert api.get(group_url(sub, "registries"), **maintainer).status_code == 404
    # Scopes: read_api reads, never writes; the virtual registry scopes.
    user = member(acme, AccessLevel.OWNER)
    assert api.get(one, **token(user, ["read_api"])).status_code == 200
    assert api.patch(one, {"name": "y"}, format="json", **token(user, ["read_api"])).status_code == 403
    assert api.get(one, **token(user, ["read_virtual_registry"])).status_code == 200
    writer = token(user, ["write_virtual_registry"])
    assert api.patch(one, {"name": "y"}, format="json", **writer).status_code == 200
    # Group access token, admin.
    assert api.get(one, **auth_headers(bot_token(acme, AccessLevel.GUEST).plaintext)).status_code == 200
    assert api.patch(one, {"name": "z"}, format="json", **token(AdminFactory())).status_code == 200
    # Deploy tokens of the top-level group with the virtual registry scopes.
    reader = DeployTokenFactory(group=acme, scopes=["read_virtual_registry"])
    assert api.get(one, **auth_headers(reader.plaintext, "deploy")).status_code == 200
    assert api.patch(one, {"name": "w"}, format="json", **auth_headers(reader.plaintext, "deploy")).status_code == 403
    package_only = DeployTokenFactory(group=acme)
    assert api.get(one, **auth_headers(package_only.plaintext, "deploy")).status_code == 403
    elsewhere = DeployTokenFactory(group=GroupFactory(), scopes=["read_virtual_registry"])
    assert api.get(one, **auth_headers(elsewhere.plaintext, "deploy")).status_code == 404
    # Job tokens act as their user: read as a member, never write.
    job = CiJobFactory(project=project, user=member(acme, AccessLevel.MAINTAINER))
    assert api.get(one, **auth_headers(job.plaintext, "job")).status_code == 200
    assert api.patch(one, {"name": "v"}, format="json", **auth_headers(job.plaintext, "job")).status_code == 403
    # An unknown credential is 401.
    assert api.get(one, HTTP_PRIVATE_TOKEN="glpat-unknown").status_code == 401


# --- remote upstreams -----------------------------------------------------------------------------


def test_upstream_secrets_are_encrypted_and_never_returned(api, acme, maintainer):
    registry = create_registry(api, acme, maintainer)
    created = create_upstream(api, registry["id"], maintainer, username="bob", password="s3cret-pw", name="central")
    assert created["upstream_type"] == "remote" and created["username"] == "bob"
    assert created["has_credentials"] is True
    assert created["registry_upstream"]["position"] == 1
    assert "password" not in created and "s3cret-pw" not in json.dumps(created)
    shown = api.get(url(f"upstreams/{created['id']}"), **maintainer)
    assert "s3cret-pw" not in shown.content.decode()
    assert shown.json()["registry_upstreams"][0]["registry_id"] == registry["id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT password_encrypted FROM registry_upstream")
        (stored,) = cursor.fetchone()
    assert stored and "s3cret-pw" not in stored
    # A new URL clears the stored credentials unless they come with it.
    moved = api.patch(url(f"upstreams/{created['id']}"), {"url": "http://127.0.0.1:9/m2/"}, format="json", **maintainer)
    assert moved.status_code == 200
    assert moved.json()["url"] == "http://127.0.0.1:9/m2"
    assert moved.json()["has_credentials"] is False and moved.json()["username"] is None


def test_upstream_validation(api, acme, maintainer, settings):
    registry = create_registry(api, acme, maintainer)
    upstreams = url(f"registries/{registry['id']}/upstreams")
    missing = api.post(upstreams, {}, format="json", **maintainer)
    assert missing.status_code == 400 and missing.json() == {"error": "url is missing"}
    half = api.post(upstreams, {"url": "http://127.0.0.1:9/a", "username": "bob"}, format="json", **maintainer)
    assert half.status_code == 400 and half.json() == {"message": {"password": ["can't be blank"]}}
    zero = {"url": "http://127.0.0.1:9/a", "metadata_cache_validity_hours": 0}
    assert api.post(upstreams, zero, format="json", **maintainer).status_code == 400
    create_upstream(api, registry["id"], maintainer, url="http://127.0.0.1:9/a", username="u", password="p")
    twin = {"url": "https://127.0.0.1:9/a/", "username": "u", "password": "p"}
    duplicate = api.post(upstreams, twin, format="json", **maintainer)
    assert duplicate.json() == {
        "message": {"group": ["already has a remote upstream with the same url and credentials"]}
    }
    for n in range(19):
        create_upstream(api, registry["id"], maintainer, url=f"http://127.0.0.1:9/m{n}")
    full = api.post(upstreams, {"url": "http://127.0.0.1:9/m99"}, format="json", **maintainer)
    assert full.status_code == 400
    assert full.json() == {"message": {"registry_upstreams.position": ["must be less than or equal to 20"]}}
    assert Upstream.objects.count() == 20


def test_file_hosts(api, acme, maintainer):
    """Other hosts an upstream's metadata may place files on (spec §5.1): `host` or `host:port`,
    normalized; anything else 400 and nothing saved."""
    registry = create_registry(api, acme, maintainer)
    created = create_upstream(api, registry["id"], maintainer)
    assert created["file_hosts"] == []
    upstream = url(f"upstreams/{created['id']}")
    for bad in (["http://files.example/x"], ["u:p@files.example"], ["files.example/path"], [""], [7], ["a:notaport"]):
        refused = api.patch(upstream, {"file_hosts": bad}, format="json", **maintainer)
        assert refused.status_code == 400 and list(refused.json()["message"]) == ["file_hosts"], bad
    too_many = api.patch(upstream, {"file_hosts": [f"h{n}.example" for n in range(21)]}, format="json", **maintainer)
    assert too_many.status_code == 400
    assert api.patch(upstream, {"file_hosts": {"a": 1}}, format="json", **maintainer).json() == {
        "error": "file_hosts is invalid"
    }
    assert Upstream.objects.get().file_hosts == []
    hosts = ["Files.Example", "files.example", "127.0.0.2:8080", "[::1]:81"]
    changed = api.patch(upstream, {"file_hosts": hosts}, format="json", **maintainer)
    assert changed.json()["file_hosts"] == ["files.example", "127.0.0.2:8080", "[::1]:81"]
    form = api.patch(
        upstream, "file_hosts=a.example%2Cb.example", content_type="application/x-www-form-urlencoded", **maintainer
    )
    assert form.json()["file_hosts"] == ["a.example", "b.example"]
    assert api.patch(upstream, {"file_hosts": []}, format="json", **maintainer).json()["file_hosts"] == []


@pytest.mark.parametrize(
    "refused",
    ["http://127.0.0.1:8081/", "http://169.254.169.254/latest", "http://[::ffff:10.0.0.1]/", "http://u:p@localhost/"],
)
def test_upstream_addresses_refused_without_the_override(api, acme, maintainer, settings, refused):
    settings.VR_ALLOW_LOCAL_NETWORK = False
    registry = create_registry(api, acme, maintainer)
    response = api.post(url(f"registries/{registry['id']}/upstreams"), {"url": refused}, format="json", **maintainer)
    assert response.status_code == 400
    assert list(response.json()["message"]) == ["url"]
    assert not Upstream.objects.exists()


def test_http_refused_unless_allowed(api, acme, maintainer, settings):
    settings.VR_ALLOW_HTTP = False
    registry = create_registry(api, acme, maintainer)
    body = {"url": "http://localhost:9/"}
    response = api.post(url(f"registries/{registry['id']}/upstreams"), body, format="json", **maintainer)
    assert response.status_code == 400 and "https" in response.json()["message"]["url"][0]


# --- order -----------------------------------------------------------------------------------------


def test_order(api, acme, maintainer):
    registry = create_registry(api, acme, maintainer)
    ids = [create_upstream(api, registry["id"], maintainer, url=f"http://127.0.0.1:9/u{n}")["id"] for n in range(3)]
    listed = api.get(url(f"registries/{registry['id']}/upstreams"), **maintainer).json()
    assert [u["id"] for u in listed] == ids
    link = RegistryUpstream.objects.get(upstream_id=ids[2])
    moved = api.patch(url(f"registry_upstreams/{link.pk}"), {"position": 1}, format="json", **maintainer)
    assert moved.status_code == 200 and moved.json()["position"] == 1
    listed = api.get(url(f"registries/{registry['id']}/upstreams"), **maintainer).json()
    assert [u["id"] for u in listed] == [ids[2], ids[0], ids[1]]
    assert [u["registry_upstream"]["position"] for u in listed] == [1, 2, 3]
    first = RegistryUpstream.objects.get(upstream_id=ids[2])
    assert api.delete(url(f"registry_upstreams/{first.pk}"), **maintainer).status_code == 204
    assert list(RegistryUpstream.objects.order_by("position").values_list("upstream_id", "position")) == [
        (ids[0], 1),
        (ids[1], 2),
    ]
    assert Upstream.objects.filter(pk=ids[2]).exists()  # unlinked, not deleted
    again = api.post(
        url("registry_upstreams"), {"registry_id": registry["id"], "upstream_id": ids[2]}, format="json", **maintainer
    )
    assert again.status_code == 201 and again.json()["position"] == 3
    twice = api.post(
        url("registry_upstreams"), {"registry_id": registry["id"], "upstream_id": ids[2]}, format="json", **maintainer
    )
    assert twice.status_code == 400
    other_group = Upstream.objects.create(group=GroupFactory(), format=FMT, kind="remote", name="x", url="https://x")
    foreign = api.post(
        url("registry_upstreams"),
        {"registry_id": registry["id"], "upstream_id": other_group.pk},
        format="json",
        **maintainer,
    )
    assert foreign.status_code == 404
    # Deleting an upstream closes the gap in every registry.
    assert api.delete(url(f"upstreams/{ids[0]}"), **maintainer).status_code == 204
    assert list(RegistryUpstream.objects.order_by("position").values_list("upstream_id", "position")) == [
        (ids[1], 1),
        (ids[2], 2),
    ]


# --- test connection, cache entries ------------------------------------------------------------------


@pytest.fixture
def upstream_server(tmp_path):
    (tmp_path / "com/company/app").mkdir(parents=True)
    server = StaticUpstream(tmp_path).start()
    yield server
    server.stop()


def test_test_connection(api, acme, maintainer, upstream_server, settings):
    probe = api.post(group_url(acme, "upstreams/test"), {"url": upstream_server.url}, format="json", **maintainer)
    assert probe.json() == {"success": True}  # a 404 for the probe path is a success
    upstream_server.stop()
    down = api.post(group_url(acme, "upstreams/test"), {"url": upstream_server.url}, format="json", **maintainer)
    assert down.json()["success"] is False and down.json()["result"].startswith("Error: ")
    settings.VR_ALLOW_LOCAL_NETWORK = False
    refused = api.post(group_url(acme, "upstreams/test"), {"url": upstream_server.url}, format="json", **maintainer)
    assert refused.json()["success"] is False
    developer = token(member(acme, AccessLevel.DEVELOPER))
    body = {"url": upstream_server.url}
    assert api.post(group_url(acme, "upstreams/test"), body, format="json", **developer).status_code == 403


def test_health_reads_healthy_once_the_upstream_has_answered(api, acme, maintainer, upstream_server, tmp_path):
    (tmp_path / "com/company/app/1.0").mkdir()
    (tmp_path / "com/company/app/1.0/app-1.0.pom").write_bytes(b"<project/>")
    registry = create_registry(api, acme, maintainer)
    upstream = create_upstream(api, registry["id"], maintainer, url=upstream_server.url)
    one = url(f"upstreams/{upstream['id']}")
    assert api.get(one, **maintainer).json()["health"]["status"] == "unknown"  # never asked yet
    pulled = api.get(
        f"/api/v4/virtual_registries/packages/{FMT}/{registry['id']}/com/company/app/1.0/app-1.0.pom", **maintainer
    )
    assert pulled.status_code == 200
    health = api.get(one, **maintainer).json()["health"]
    assert health["status"] == "healthy" and health["checked_at"] and health["last_error"] is None

    Upstream.objects.filter(pk=upstream["id"]).update(
        consecutive_failures=3, last_error="upstream-timeout", health_checked_at=None
    )
    assert api.get(one, **maintainer).json()["health"]["status"] == "unhealthy"
    assert api.get(url(f"upstreams/{upstream['id']}/test"), **maintainer).json() == {"success": True}
    health = api.get(one, **maintainer).json()["health"]
    assert health["status"] == "healthy" and health["last_error"] is None  # a successful test resets it


def test_cache_entries_list_search_and_delete(api, acme, maintainer, upstream_server, tmp_path):
    (tmp_path / "com/company/app/1.0").mkdir()
    (tmp_path / "com/company/app/1.0/app-1.0.jar").write_bytes(b"jar bytes")
    (tmp_path / "com/company/app/1.0/app-1.0.pom").write_bytes(b"<project/>")
    registry = create_registry(api, acme, maintainer)
    upstream = create_upstream(api, registry["id"], maintainer, url=upstream_server.url)
    developer = token(member(acme, AccessLevel.DEVELOPER))
    for name in ("app-1.0.jar", "app-1.0.pom"):
        got = api.get(
            f"/api/v4/virtual_registries/packages/{FMT}/{registry['id']}/com/company/app/1.0/{name}", **developer
        )
        assert got.status_code == 200
    entries = api.get(url(f"upstreams/{upstream['id']}/cache_entries"), **developer)
    assert entries.status_code == 200 and entries["X-Total"] == "2"
    paths = [e["relative_path"] for e in entries.json()]
    assert paths == ["/com/company/app/1.0/app-1.0.jar", "/com/company/app/1.0/app-1.0.pom"]
    jar = entries.json()[0]
    assert jar["size"] == len(b"jar bytes") and jar["upstream_id"] == upstream["id"]
    assert base64.urlsafe_b64decode(jar["id"]).decode() == f"{upstream['id']} /com/company/app/1.0/app-1.0.jar"
    searched = api.get(url(f"upstreams/{upstream['id']}/cache_entries"), {"search": ".pom"}, **developer).json()
    assert [e["relative_path"] for e in searched] == ["/com/company/app/1.0/app-1.0.pom"]
    assert api.delete(url(f"cache_entries/{jar['id']}"), **developer).status_code == 403
    assert api.delete(url(f"cache_entries/{jar['id']}"), **maintainer).status_code == 204
    assert CacheEntry.objects.filter(status="default").count() == 1
    assert api.delete(url(f"upstreams/{upstream['id']}/cache"), **maintainer).status_code == 204
    assert not CacheEntry.objects.filter(status="default").exists()


# --- local upstreams and claims -------------------------------------------------------------------


def test_local_upstreams_and_their_claims(api, acme, maintainer, settings):
    registry = create_registry(api, acme, maintainer)
    project = ProjectFactory(group=acme, path="libs")
    owner = token(member(acme, AccessLevel.OWNER))
    publish = api.put(
        f"/api/v4/projects/{project.pk}/packages/{FMT}/com/acme/lib/1.0/lib-1.0.jar",
        data=b"jar",
        content_type="application/octet-stream",
        **owner,
    )
    assert publish.status_code in (200, 201)
    local = url(f"registries/{registry['id']}/local/upstreams")

    both = api.post(
        local, {"name": "x", "local_project_id": project.pk, "local_group_id": acme.pk}, format="json", **maintainer
    )
    assert both.status_code == 400 and "error" in both.json()
    missing = api.post(local, {"name": "x", "local_project_id": 999999}, format="json", **maintainer)
    assert missing.json() == {"message": {"local_project": ["must exist"]}}
    outside = ProjectFactory(group=GroupFactory(path="elsewhere"))
    foreign = api.post(local, {"name": "x", "local_project_id": outside.pk}, format="json", **maintainer)
    assert foreign.status_code == 403  # the caller cannot read it
    settings.VR_CROSS_GROUP_LOCAL = False
    readable = ProjectFactory(group=GroupFactory(path="open", visibility="public"), visibility="public")
    crossing = api.post(local, {"name": "x", "local_project_id": readable.pk}, format="json", **maintainer)
    assert crossing.status_code == 400 and list(crossing.json()["message"]) == ["local_project"]

    created = api.post(local, {"name": "ours", "local_project_id": project.pk}, format="json", **maintainer)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["upstream_type"] == "local" and body["local_project_id"] == project.pk
    assert body["registry_upstream"]["local_upstream_id"] == body["id"] and "url" not in body
    twice = api.post(local, {"name": "again", "local_project_id": project.pk}, format="json", **maintainer)
    assert twice.status_code == 400
    assert api.get(url(f"local/upstreams/{body['id']}/test"), **maintainer).json() == {"success": True}

    claims = url(f"local/upstreams/{body['id']}/claims")
    assert api.get(claims, **maintainer).status_code == 403  # Owners list and release claims
    listed = api.get(claims, **owner).json()
    assert [claim["name"] for claim in listed] == ["com/acme/lib"]
    assert api.delete(f"{claims}/{listed[0]['id']}", **owner).status_code == 204
    assert api.get(claims, **owner).json() == []
    assert api.delete(f"{claims}/{listed[0]['id']}", **owner).status_code == 404


def test_unlinking_and_deleting_a_local_upstream_are_audit_events(api, acme, settings):
    """A local upstream leaving a registry (or deleted) stops hiding its names there (spec §4.2):
    the group's audit events (Owners) say who did it, to which registry and upstream; no secret."""
    maintainer_user = member(acme, AccessLevel.MAINTAINER)
    maintainer_token = AccessTokenFactory(user=maintainer_user, scopes=["api"]).plaintext
    maintainer = auth_headers(maintainer_token)
    owner = token(member(acme, AccessLevel.OWNER))
    first, second = create_registry(api, acme, maintainer), create_registry(api, acme, maintainer, name="other")
    project = ProjectFactory(group=acme, path="libs")
    created = api.post(
        url(f"registries/{first['id']}/local/upstreams"),
        {"name": "ours", "local_project_id": project.pk, "claimed_group_ids": ["com.acme.*"]},
        format="json",
        **maintainer,
    )
    assert created.status_code == 201, created.content
    upstream_id = created.json()["id"]
    linked = api.post(
        url("registry_upstreams"),
        {"registry_id": second["id"], "local_upstream_id": upstream_id},
        format="json",
        **maintainer,
    )
    assert linked.status_code == 201, linked.content

    def events():
        response = api.get(f"/api/v4/groups/{acme.pk}/audit_events", **owner)
        assert response.status_code == 200
        assert maintainer_token not in response.content.decode()
        gone = ("virtual_registry_local_upstream_unlinked", "virtual_registry_local_upstream_deleted")
        return [event for event in response.json() if event["event_name"] in gone]

    assert events() == []
    assert api.delete(url(f"registry_upstreams/{linked.json()['id']}"), **maintainer).status_code == 204
    [unlinked] = events()
    assert unlinked["event_name"] == "virtual_registry_local_upstream_unlinked"
    assert unlinked["entity_id"] == acme.pk and unlinked["author_id"] == maintainer_user.pk
    details = unlinked["details"]
    assert (details["registry_id"], details["registry_name"]) == (second["id"], "other")
    assert (details["upstream_id"], details["upstream_name"]) == (upstream_id, "ours")
    assert details["local_project"] == "acme/libs" and details["reason"] == "removed from the registry"
    # A remote upstream's unlinking is no such event.
    remote_link = create_upstream(api, first["id"], maintainer, username="u", password="remote-secret")
    assert (
        api.delete(url(f"registry_upstreams/{remote_link['registry_upstream']['id']}"), **maintainer).status_code == 204
    )
    assert len(events()) == 1

    assert api.delete(url(f"local/upstreams/{upstream_id}"), **maintainer).status_code == 204
    newest = events()
    assert [event["event_name"] for event in newest] == [
        "virtual_registry_local_upstream_deleted",
        "virtual_registry_local_upstream_unlinked",
        "virtual_registry_local_upstream_unlinked",
    ]
    assert newest[0]["details"]["claims_count"] == 1  # com.acme.*
    assert newest[1]["details"]["registry_id"] == first["id"] and newest[1]["details"]["reason"] == "upstream deleted"
    assert "remote-secret" not in json.dumps(newest)


def test_claimed_scopes(api, acme, maintainer):
    """npm local upstreams claim `@<top-level group>` and the scopes in `claimed_scopes` (spec
    §4.2); a PATCH sets the list, dropping a scope releases its claim (Owners, audited)."""
    npm = "/api/v4/virtual_registries/packages/npm"
    registry = api.post(
        f"/api/v4/groups/{acme.pk}/-/virtual_registries/packages/npm/registries",
        {"name": "n"},
        format="json",
        **maintainer,
    ).json()
    project = ProjectFactory(group=acme, path="web")
    local = f"{npm}/registries/{registry['id']}/local/upstreams"
    bad = api.post(
        local,
        {"name": "o", "local_project_id": project.pk, "claimed_scopes": ["@Bad Scope"]},
        format="json",
        **maintainer,
    )
    assert bad.status_code == 400 and list(bad.json()["message"]) == ["claimed_scopes"]
    assert not Upstream.objects.exists()
    body = {"name": "o", "local_project_id": project.pk, "claimed_scopes": ["partner", "@vendor", "@partner"]}
    created = api.post(local, body, format="json", **maintainer)
    assert created.status_code == 201 and created.json()["claimed_scopes"] == ["@acme", "@partner", "@vendor"]
    upstream = f"{npm}/local/upstreams/{created.json()['id']}"
    added = api.patch(
        upstream, {"claimed_scopes": ["@acme", "@partner", "@vendor", "@more"]}, format="json", **maintainer
    )
    assert added.json()["claimed_scopes"] == ["@acme", "@more", "@partner", "@vendor"]
    dropping = {"claimed_scopes": "@acme,@partner"}
    assert api.patch(upstream, dropping, format="json", **maintainer).status_code == 403  # a release: Owners
    owner_user = member(acme, AccessLevel.OWNER)
    owner = token(owner_user)
    assert api.patch(upstream, dropping, format="json", **owner).json()["claimed_scopes"] == ["@acme", "@partner"]
    released = AuditEvent.objects.filter(action="virtual_registry_claim_released").order_by("target_details")
    assert [event.target_details for event in released] == ["@more", "@vendor"]
    assert released[0].entity_id == acme.pk and released[0].details["upstream_id"] == created.json()["id"]
    assert released[0].author_name == owner_user.username

    claims = api.get(f"{upstream}/claims", **owner).json()
    partner = next(claim for claim in claims if claim["name"] == "@partner")
    assert api.delete(f"{upstream}/claims/{partner['id']}", **owner).status_code == 204
    assert AuditEvent.objects.filter(action="virtual_registry_claim_released", target_details="@partner").exists()

    maven_local = url(f"registries/{create_registry(api, acme, maintainer)['id']}/local/upstreams")
    refused = api.post(
        maven_local,
        {"name": "m", "local_project_id": project.pk, "claimed_scopes": ["@x"]},
        format="json",
        **maintainer,
    )
    assert refused.status_code == 400 and refused.json() == {
        "message": {"claimed_scopes": ["is not supported for this package format"]}
    }


# --- cleanup policy ----------------------------------------------------------------------------------


def test_cleanup_policy_api_and_run(api, acme, maintainer, upstream_server, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from registry.models import VirtualCleanupPolicy
    from registry.tasks import run_due_virtual_cleanup_policies

    policy_url = f"/api/v4/groups/{acme.pk}/-/virtual_registries/cleanup/policy"
    owner = token(member(acme, AccessLevel.OWNER))
    assert api.get(policy_url, **maintainer).status_code == 403
    assert api.get(policy_url, **owner).status_code == 404
    bad = api.post(policy_url, {"cadence": 3}, format="json", **owner)
    assert bad.status_code == 400 and bad.json() == {"error": "cadence does not have a valid value"}
    body = {"enabled": True, "keep_n_days_after_download": 10, "cadence": 7}
    created = api.post(policy_url, body, format="json", **owner)
    assert created.status_code == 201, created.content
    assert created.json()["enabled"] is True and created.json()["next_run_at"]
    assert api.post(policy_url, body, format="json", **owner).status_code == 400
    assert api.patch(policy_url, {}, format="json", **owner).status_code == 400

    # Two cached files; one last downloaded 11 days ago.
    for name in ("old.jar", "new.jar"):
        (tmp_path / "com/company/app/1.0").mkdir(parents=True, exist_ok=True)
        (tmp_path / "com/company/app/1.0" / name).write_bytes(name.encode())
    registry = create_registry(api, acme, maintainer)
    create_upstream(api, registry["id"], maintainer, url=upstream_server.url)
    for name in ("old.jar", "new.jar"):
        path = f"/api/v4/virtual_registries/packages/{FMT}/{registry['id']}/com/company/app/1.0/{name}"
        assert api.get(path, **maintainer).status_code == 200
    CacheEntry.objects.filter(relative_path__endswith="old.jar").update(
        downloaded_at=timezone.now() - timedelta(days=11)
    )
    VirtualCleanupPolicy.objects.update(next_run_at=timezone.now() - timedelta(minutes=1))
    run_due_virtual_cleanup_policies()
    assert list(CacheEntry.objects.values_list("relative_path", flat=True)) == ["/com/company/app/1.0/new.jar"]
    shown = api.get(policy_url, **owner).json()
    assert shown["last_run_deleted_entries_count"] == 1 and shown["last_run_deleted_size"] == len(b"old.jar")
    assert shown["last_run_detailed_metrics"] == {FMT: {"deleted_entries_count": 1, "deleted_size": 7}}
    assert api.delete(policy_url, **owner).status_code == 204
