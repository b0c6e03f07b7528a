"""Audit events of virtual registry management (spec/virtual-registries.md §5.5): every change made
through the REST API records exactly its event (actor, group, target, details), listed by
`GET /groups/:id/audit_events`; a credential change names the field, never a value; a refused
change records nothing."""

import hashlib
import json

import pytest

from accounts.models import AuditEvent
from accounts.roles import AccessLevel
from registry.models import CacheEntry
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.helpers import auth_headers
from tests.upstreams import StaticUpstream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("local_upstreams_allowed")]
FMT = "maven"  # any format with virtual support; the API names none
PASSWORD = "Zq9-first-pass-word"
NEW_PASSWORD = "Wk7-second-pass-word"
USERNAME = "Hv4-robot-user"


@pytest.fixture
def acme():
    return GroupFactory(path="acme", visibility="public")


@pytest.fixture
def maintainer_user(acme):
    return member(acme, AccessLevel.MAINTAINER)


@pytest.fixture
def maintainer(maintainer_user):
    return auth_headers(AccessTokenFactory(user=maintainer_user, scopes=["api"]).plaintext)


@pytest.fixture
def owner(acme):
    return auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.OWNER), scopes=["api"]).plaintext)


def group_url(group, what):
    return f"/api/v4/groups/{group.pk}/-/virtual_registries/packages/{FMT}/{what}"


def url(what):
    return f"/api/v4/virtual_registries/packages/{FMT}/{what}"


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json() if response.content else None


class Trail:
    """The group's virtual registry audit events as its Owner reads them, oldest first, only the
    new ones (members added and tokens used record their own)."""

    def __init__(self, api, group, owner):
        self.api, self.group, self.owner = api, group, owner
        self.seen = set(AuditEvent.objects.values_list("pk", flat=True))
        self.bodies = []

    def new(self):
        response = self.api.get(f"/api/v4/groups/{self.group.pk}/audit_events", {"per_page": 100}, **self.owner)
        assert response.status_code == 200
        self.bodies.append(response.content.decode())
        events = [event for event in response.json() if event["id"] not in self.seen]
        events = [event for event in events if event["event_name"].startswith("virtual_registry_")]
        self.seen.update(event["id"] for event in events)
        return sorted(events, key=lambda event: event["id"])

    def one(self, name):
        events = self.new()
        assert [event["event_name"] for event in events] == [name], events
        return events[0]


@pytest.fixture
def trail(api, acme, owner):
    return Trail(api, acme, owner)


def no_secret_anywhere(texts, secrets):
    """Neither a secret, a prefix of it, nor its digest in `texts` or in any stored event."""
    stored = [json.dumps(e.details) + e.target_details for e in AuditEvent.objects.all()]
    for secret in secrets:
        for needle in (secret, secret[:4], hashlib.sha256(secret.encode()).hexdigest()[:12]):
            for text in [*texts, *stored]:
                assert needle not in text


def test_registry_created_updated_deleted(api, acme, maintainer, maintainer_user, trail):
    created = ok(
        api.post(
            group_url(acme, "registries"), {"name": "main", "merge_maven_metadata": False}, format="json", **maintainer
        ),
        201,
    )
    event = trail.one("virtual_registry_created")
    assert (event["entity_type"], event["entity_id"], event["author_id"]) == ("Group", acme.pk, maintainer_user.pk)
    details = event["details"]
    assert (details["target_type"], details["target_id"]) == ("VirtualRegistry", str(created["id"]))
    assert (details["registry_id"], details["registry_name"], details["format"]) == (created["id"], "main", FMT)
    assert details["settings"] == {"description": "", "retain_removed_versions": False, "merge_maven_metadata": False}

    one = url(f"registries/{created['id']}")
    ok(api.patch(one, {"name": "renamed", "retain_removed_versions": True}, format="json", **maintainer))
    details = trail.one("virtual_registry_updated")["details"]
    assert details["registry_name"] == "renamed"
    assert details["changes"] == [
        {"change": "name", "from": "main", "to": "renamed"},
        {"change": "retain_removed_versions", "from": False, "to": True},
    ]
    ok(api.patch(one, {"description": ""}, format="json", **maintainer))  # nothing changed: no event
    assert trail.new() == []

    remote = ok(
        api.post(
            url(f"registries/{created['id']}/upstreams"), {"url": "http://127.0.0.1:9/a"}, format="json", **maintainer
        ),
        201,
    )
    trail.new()
    assert api.delete(one, **maintainer).status_code == 204
    events = trail.new()
    assert [event["event_name"] for event in events] == [
        "virtual_registry_deleted",
        "virtual_registry_upstream_deleted",
    ]
    assert events[0]["details"]["deleted_upstream_ids"] == [remote["id"]]
    assert events[1]["details"]["upstream_id"] == remote["id"]


def test_remote_upstream_events_and_credentials_never_recorded(api, acme, maintainer, trail):
    registry = ok(api.post(group_url(acme, "registries"), {"name": "main"}, format="json", **maintainer), 201)
    trail.new()
    body = {"url": "http://127.0.0.1:9/maven2", "name": "central", "username": USERNAME, "password": PASSWORD}
    created = ok(api.post(url(f"registries/{registry['id']}/upstreams"), body, format="json", **maintainer), 201)
    event = trail.one("virtual_registry_upstream_created")
    details = event["details"]
    assert (details["target_type"], details["target_id"]) == ("Upstream", str(created["id"]))
    assert details["upstream_type"] == "remote" and details["registry_id"] == registry["id"]
    assert details["url"] == "http://127.0.0.1:9/maven2"
    assert details["credentials_set"] == ["username", "password"]  # named, never shown

    one = url(f"upstreams/{created['id']}")
    ok(api.patch(one, {"name": "maven central", "cache_validity_hours": 48}, format="json", **maintainer))
    assert trail.one("virtual_registry_upstream_updated")["details"]["changes"] == [
        {"change": "name", "from": "central", "to": "maven central"},
        {"change": "cache_validity_hours", "from": 24, "to": 48},
    ]

    ok(api.patch(one, {"password": NEW_PASSWORD}, format="json", **maintainer))
    changed = trail.one("virtual_registry_upstream_credentials_changed")
    assert changed["details"]["credentials"] == [{"change": "password", "action": "changed"}]
    assert "changes" not in changed["details"]
    ok(api.patch(one, {"password": NEW_PASSWORD}, format="json", **maintainer))  # the same again
    assert trail.new() == []
    ok(api.patch(one, {"username": "", "password": ""}, format="json", **maintainer))
    cleared = trail.one("virtual_registry_upstream_credentials_changed")["details"]["credentials"]
    assert cleared == [{"change": "username", "action": "cleared"}, {"change": "password", "action": "cleared"}]
    ok(api.patch(one, {"username": USERNAME, "password": PASSWORD}, format="json", **maintainer))
    set_ = trail.one("virtual_registry_upstream_credentials_changed")["details"]["credentials"]
    assert set_ == [{"change": "username", "action": "set"}, {"change": "password", "action": "set"}]
    # A new URL drops the stored credentials: two events, the setting with its values, the
    # credentials by name.
    ok(api.patch(one, {"url": "http://127.0.0.1:9/other"}, format="json", **maintainer))
    events = trail.new()
    assert [event["event_name"] for event in events] == [
        "virtual_registry_upstream_updated",
        "virtual_registry_upstream_credentials_changed",
    ]
    assert events[0]["details"]["changes"] == [
        {"change": "url", "from": "http://127.0.0.1:9/maven2", "to": "http://127.0.0.1:9/other"}
    ]
    assert [c["change"] for c in events[1]["details"]["credentials"]] == ["username", "password"]

    assert api.delete(one, **maintainer).status_code == 204
    events = trail.new()
    assert [event["event_name"] for event in events] == [
        "virtual_registry_upstream_unlinked",
        "virtual_registry_upstream_deleted",
    ]
    assert (
        events[0]["details"]["reason"] == "upstream deleted" and events[0]["details"]["registry_id"] == registry["id"]
    )
    assert events[1]["details"]["upstream_name"] == "maven central"
    no_secret_anywhere(trail.bodies, [PASSWORD, NEW_PASSWORD, USERNAME])


def test_auth_token_change_is_named_not_shown(api, acme, maintainer, trail):
    """A format whose upstreams take a token (npm): set, changed, cleared, by name only."""
    npm = "/api/v4/virtual_registries/packages/npm"
    registry = api.post(
        f"/api/v4/groups/{acme.pk}/-/virtual_registries/packages/npm/registries",
        {"name": "n"},
        format="json",
        **maintainer,
    ).json()
    token = "npm_Tk3first-token-value"
    body = {"url": "http://127.0.0.1:9/npm", "auth_token": token}
    created = ok(api.post(f"{npm}/registries/{registry['id']}/upstreams", body, format="json", **maintainer), 201)
    trail.new()
    one = f"{npm}/upstreams/{created['id']}"
    ok(api.patch(one, {"auth_token": "npm_Rb8second-token"}, format="json", **maintainer))
    details = trail.one("virtual_registry_upstream_credentials_changed")["details"]
    assert details["credentials"] == [{"change": "auth_token", "action": "changed"}]
    ok(api.patch(one, {"auth_token": ""}, format="json", **maintainer))
    details = trail.one("virtual_registry_upstream_credentials_changed")["details"]
    assert details["credentials"] == [{"change": "auth_token", "action": "cleared"}]
    no_secret_anywhere(trail.bodies, [token, "npm_Rb8second-token"])


def test_linking_and_unlinking_an_upstream(api, acme, maintainer, trail):
    first = ok(api.post(group_url(acme, "registries"), {"name": "first"}, format="json", **maintainer), 201)
    second = ok(api.post(group_url(acme, "registries"), {"name": "second"}, format="json", **maintainer), 201)
    body = {"url": "http://127.0.0.1:9/a"}
    upstream = ok(api.post(url(f"registries/{first['id']}/upstreams"), body, format="json", **maintainer), 201)
    trail.new()
    link = {"registry_id": second["id"], "upstream_id": upstream["id"]}
    linked = ok(api.post(url("registry_upstreams"), link, format="json", **maintainer), 201)
    details = trail.one("virtual_registry_upstream_linked")["details"]
    assert (details["registry_id"], details["upstream_id"], details["position"]) == (second["id"], upstream["id"], 1)
    assert api.post(url("registry_upstreams"), link, format="json", **maintainer).status_code == 400  # already in it
    assert trail.new() == []
    assert api.delete(url(f"registry_upstreams/{linked['id']}"), **maintainer).status_code == 204
    details = trail.one("virtual_registry_upstream_unlinked")["details"]
    assert (details["registry_id"], details["reason"]) == (second["id"], "removed from the registry")


@pytest.fixture
def upstream_server(tmp_path):
    (tmp_path / "com/company/app/1.0").mkdir(parents=True)
    for name in ("app-1.0.jar", "app-1.0.pom", "app-1.0.module"):
        (tmp_path / "com/company/app/1.0" / name).write_bytes(b"bytes of " + name.encode())
    server = StaticUpstream(tmp_path).start()
    yield server
    server.stop()


def test_rules_order_and_cache_events(api, acme, maintainer, trail, upstream_server):
    registry = ok(api.post(group_url(acme, "registries"), {"name": "main"}, format="json", **maintainer), 201)
    upstreams = url(f"registries/{registry['id']}/upstreams")
    first = ok(api.post(upstreams, {"url": upstream_server.url}, format="json", **maintainer), 201)
    second = ok(api.post(upstreams, {"url": "http://127.0.0.1:9/b"}, format="json", **maintainer), 201)
    trail.new()

    rule = {"rule_type": "deny", "pattern_type": "wildcard", "target": "version", "pattern": "9.*"}
    added = ok(api.post(url(f"upstreams/{second['id']}/rules"), rule, format="json", **maintainer), 201)
    details = trail.one("virtual_registry_upstream_rule_created")["details"]
    assert details["upstream_id"] == second["id"] and details["rule_id"] == added["id"]
    assert (details["rule_type"], details["target"], details["pattern"]) == ("deny", "version", "9.*")
    assert api.delete(url(f"upstreams/{second['id']}/rules/{added['id']}"), **maintainer).status_code == 204
    assert trail.one("virtual_registry_upstream_rule_deleted")["details"]["rule_id"] == added["id"]

    link = second["registry_upstream"]["id"]
    ok(api.patch(url(f"registry_upstreams/{link}"), {"position": 1}, format="json", **maintainer))
    details = trail.one("virtual_registry_upstream_position_changed")["details"]
    assert (details["registry_id"], details["upstream_id"], details["from"], details["to"]) == (
        registry["id"],
        second["id"],
        2,
        1,
    )
    ok(api.patch(url(f"registry_upstreams/{link}"), {"position": 1}, format="json", **maintainer))
    assert trail.new() == []  # already there
    ok(api.patch(url(f"registry_upstreams/{link}"), {"position": 2}, format="json", **maintainer))
    assert trail.one("virtual_registry_upstream_position_changed")["details"]["to"] == 2

    def pull(name):
        path = f"/api/v4/virtual_registries/packages/{FMT}/{registry['id']}/com/company/app/1.0/{name}"
        assert api.get(path, **maintainer).status_code == 200

    for name in ("app-1.0.jar", "app-1.0.pom", "app-1.0.module"):
        pull(name)
    trail.new()
    entries = ok(api.get(url(f"upstreams/{first['id']}/cache_entries"), **maintainer))
    assert api.delete(url(f"cache_entries/{entries[0]['id']}"), **maintainer).status_code == 204
    details = trail.one("virtual_registry_cache_entry_deleted")["details"]
    assert details["upstream_id"] == first["id"] and details["path"] == entries[0]["relative_path"]
    assert api.delete(url(f"cache_entries/{entries[0]['id']}"), **maintainer).status_code == 404
    assert trail.new() == []

    assert api.delete(url(f"upstreams/{first['id']}/cache"), **maintainer).status_code == 204
    event = trail.one("virtual_registry_cache_purged")
    assert event["details"]["target_type"] == "Upstream" and event["details"]["entries_count"] == 2
    pull("app-1.0.jar")
    trail.new()
    assert api.delete(url(f"registries/{registry['id']}/cache"), **maintainer).status_code == 204
    event = trail.one("virtual_registry_cache_purged")
    assert event["details"]["target_type"] == "VirtualRegistry"
    assert event["details"]["entries_count"] == 1
    assert not CacheEntry.objects.filter(status="default").exists()
    assert sorted(event["details"]["upstream_ids"]) == sorted([first["id"], second["id"]])


def test_local_upstream_and_claim_events(api, acme, maintainer, owner, trail):
    registry = ok(api.post(group_url(acme, "registries"), {"name": "main"}, format="json", **maintainer), 201)
    project = ProjectFactory(group=acme, path="libs")
    trail.new()
    body = {"name": "ours", "local_project_id": project.pk, "claimed_group_ids": ["com.acme.*"]}
    created = ok(api.post(url(f"registries/{registry['id']}/local/upstreams"), body, format="json", **maintainer), 201)
    events = trail.new()
    assert [event["event_name"] for event in events] == [
        "virtual_registry_local_upstream_created",
        "virtual_registry_claim_added",
    ]
    assert events[0]["details"]["local_project"] == "acme/libs" and events[0]["details"]["upstream_type"] == "local"
    assert events[1]["details"]["claim"] == "com.acme.*" and events[1]["details"]["upstream_id"] == created["id"]

    one = url(f"local/upstreams/{created['id']}")
    ok(api.patch(one, {"claimed_group_ids": ["com.acme.*", "org.acme.*"]}, format="json", **maintainer))
    assert trail.one("virtual_registry_claim_added")["details"]["claim"] == "org.acme.*"
    ok(api.patch(one, {"name": "internal"}, format="json", **maintainer))
    changes = trail.one("virtual_registry_local_upstream_updated")["details"]["changes"]
    assert changes == [{"change": "name", "from": "ours", "to": "internal"}]
    # Dropping a claim is the Owners' (403 for a Maintainer): nothing recorded, nothing changed.
    assert api.patch(one, {"claimed_group_ids": [], "name": "x"}, format="json", **maintainer).status_code == 403
    assert trail.new() == []
    ok(api.patch(one, {"claimed_group_ids": ["org.acme.*"]}, format="json", **owner))
    assert trail.one("virtual_registry_claim_released")["details"]["claim"] == "com.acme.*"


def test_refused_changes_record_nothing(api, acme, maintainer, trail):
    registry = ok(api.post(group_url(acme, "registries"), {"name": "main"}, format="json", **maintainer), 201)
    body = {"url": "http://127.0.0.1:9/a", "username": USERNAME, "password": PASSWORD}
    upstream = ok(api.post(url(f"registries/{registry['id']}/upstreams"), body, format="json", **maintainer), 201)
    trail.new()
    virtual = AuditEvent.objects.filter(action__startswith="virtual_registry_")
    before = virtual.count()
    developer = auth_headers(AccessTokenFactory(user=member(acme, AccessLevel.DEVELOPER), scopes=["api"]).plaintext)
    stranger = auth_headers(AccessTokenFactory(user=member(GroupFactory(path="other")), scopes=["api"]).plaintext)
    one, reg = url(f"upstreams/{upstream['id']}"), url(f"registries/{registry['id']}")
    link = url(f"registry_upstreams/{upstream['registry_upstream']['id']}")
    rule = {"rule_type": "deny", "pattern_type": "wildcard", "target": "version", "pattern": "9.*"}
    refused = [
        # 403: a Developer
        (403, api.post(group_url(acme, "registries"), {"name": "d"}, format="json", **developer)),
        (403, api.patch(reg, {"name": "d"}, format="json", **developer)),
        (403, api.delete(reg, **developer)),
        (403, api.patch(one, {"password": NEW_PASSWORD}, format="json", **developer)),
        (403, api.delete(one, **developer)),
        (403, api.delete(url(f"upstreams/{upstream['id']}/cache"), **developer)),
        (403, api.post(url(f"upstreams/{upstream['id']}/rules"), rule, format="json", **developer)),
        (403, api.patch(link, {"position": 1}, format="json", **developer)),
        # 404: not a member
        (404, api.patch(one, {"password": NEW_PASSWORD}, format="json", **stranger)),
        (404, api.delete(reg, **stranger)),
        (404, api.delete(url(f"registries/{registry['id']}/cache"), **stranger)),
        # 400: invalid
        (400, api.post(group_url(acme, "registries"), {"name": "main"}, format="json", **maintainer)),
        (400, api.patch(reg, {"name": " "}, format="json", **maintainer)),
        (400, api.patch(one, {"username": ""}, format="json", **maintainer)),  # a password without a username
        (400, api.patch(one, {"file_hosts": ["http://x/"]}, format="json", **maintainer)),
        (400, api.patch(one, {"password": NEW_PASSWORD, "cache_validity_hours": -1}, format="json", **maintainer)),
        (
            400,
            api.post(
                url(f"upstreams/{upstream['id']}/rules"), {**rule, "target": "scope"}, format="json", **maintainer
            ),
        ),
        (400, api.patch(link, {"position": 5}, format="json", **maintainer)),
        (404, api.delete(url(f"upstreams/{upstream['id']}/rules/999999"), **maintainer)),
    ]
    statuses = [response.status_code for _, response in refused]
    assert statuses == [status for status, _ in refused]
    assert virtual.count() == before
    assert trail.new() == []
