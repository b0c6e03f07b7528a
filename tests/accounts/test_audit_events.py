"""Audit events: what each change records (actor, address, target, before and after), who may
read which trail through the API and the pages, the filters, retention, and that no route, page
or admin action changes an event."""

import contextlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import jobs
from accounts.models import AuditEvent, Membership, Project
from accounts.roles import AccessLevel
from registry import tasks
from registry.models import CleanupPolicy, PackageVersion
from tests.accounts.conftest import person
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    CiJobFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import auth_headers
from tests.payloads import npm_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def maintainer(project):
    return person(AccessLevel.MAINTAINER, project=project)


def new_events(since, **filters):
    return list(AuditEvent.objects.filter(pk__gt=since, **filters).order_by("pk"))


def last_id():
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_memberships_visibility_and_allowlist_record_who_changed_what(client, project, maintainer):
    owner = person(AccessLevel.OWNER, project=project)
    target = UserFactory(username="newcomer")
    other = ProjectFactory(group=project.group, path="other")
    MembershipFactory(user=owner.user, project=other, access_level=AccessLevel.OWNER)
    project.group.visibility = "internal"
    project.group.save()
    start = last_id()
    members = f"/api/v4/projects/{project.pk}/members"
    body = {"user_id": target.pk, "access_level": 30}
    assert client.post(members, body, REMOTE_ADDR="10.1.2.3", **maintainer.headers).status_code == 201
    changed = client.put(
        f"{members}/{target.pk}", json.dumps({"access_level": 40}), "application/json", **maintainer.headers
    )
    assert changed.status_code == 200
    assert client.delete(f"{members}/{target.pk}", **maintainer.headers).status_code == 204
    put = client.put(
        f"/api/v4/projects/{project.pk}", json.dumps({"visibility": "internal"}), "application/json", **owner.headers
    )
    assert put.status_code == 200, put.content
    allow = f"/api/v4/projects/{project.pk}/job_token_scope/allowlist"
    assert client.post(allow, {"target_project_id": other.pk}, **owner.headers).status_code == 201
    assert client.delete(f"{allow}/{other.pk}", **owner.headers).status_code == 204

    rows = new_events(start, entity_type="Project", entity_id=project.pk)
    assert [(e.action, e.author_id, e.details) for e in rows] == [
        ("member_added", maintainer.user.pk, {"access_level": 30}),
        ("member_updated", maintainer.user.pk, {"change": "access_level", "from": 30, "to": 40}),
        ("member_removed", maintainer.user.pk, {"access_level": 40}),
        ("project_setting_changed", owner.user.pk, {"change": "visibility", "from": "private", "to": "internal"}),
        ("job_token_allowlist_added", owner.user.pk, {}),
        ("job_token_allowlist_removed", owner.user.pk, {}),
    ]
    assert rows[0].ip_address == "10.1.2.3"
    assert (rows[0].target_type, rows[0].target_details) == ("User", "newcomer")
    assert (rows[4].target_type, rows[4].target_details) == ("Project", "acme/other")
    assert {e.author_kind for e in rows} == {"personal"}
    assert {e.token_id for e in rows} == {maintainer.token.pk, owner.token.pk}


def test_tokens_created_revoked_and_job_ends(client, project, maintainer):
    start = last_id()
    created = client.post(
        f"/api/v4/projects/{project.pk}/deploy_tokens",
        {"name": "ci", "scopes": ["read_package_registry"]},
        **maintainer.headers,
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    token_id = created.json()["id"]
    assert (
        client.delete(f"/api/v4/projects/{project.pk}/deploy_tokens/{token_id}", **maintainer.headers).status_code
        == 204
    )
    job = CiJobFactory(project=project, user=maintainer.user)
    jobs.finish_job(job)

    rows = new_events(start, entity_type="Project")
    assert [(e.action, e.target_type, e.target_id) for e in rows] == [
        ("deploy_token_created", "DeployToken", str(token_id)),
        ("deploy_token_revoked", "DeployToken", str(token_id)),
        ("job_token_expired", "CiJob", str(job.pk)),
    ]
    assert rows[0].details == {"scopes": ["read_package_registry"], "expires_at": None}
    assert rows[2].details == {"status": "success", "user": maintainer.user.username}
    assert secret not in json.dumps([e.details for e in rows])


def test_stale_jobs_expire_as_the_system(project):
    job = CiJobFactory(project=project, user=UserFactory())
    type(job).objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(days=2))
    start = last_id()
    assert tasks.expire_stale_jobs() == 1
    (row,) = new_events(start)
    assert (row.action, row.author_kind, row.author_name, row.target_id) == (
        "job_token_expired",
        "system",
        "job timeout",
        str(job.pk),
    )


def test_deploy_and_access_token_use_from_a_new_address_once_a_day(client, project):
    from tests.factories import DeployTokenFactory

    deploy = DeployTokenFactory(project=project)
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    start = last_id()
    for address in ("10.0.0.5", "10.0.0.5", "10.0.0.6"):
        response = client.get(url, REMOTE_ADDR=address, **auth_headers(deploy.plaintext, "deploy"))
        assert response.status_code == 404
    rows = new_events(start, action="token_used_from_new_ip")
    assert [(e.author_kind, e.token_id, e.token_name, e.ip_address) for e in rows] == [
        ("deploy", deploy.pk, deploy.name, "10.0.0.5"),
        ("deploy", deploy.pk, deploy.name, "10.0.0.6"),
    ]
    assert (rows[0].entity_type, rows[0].entity_id) == ("Project", project.pk)


def test_web_sign_in_success_and_failure(project):
    user = UserFactory(username="alice")
    browser = Client()
    start = last_id()
    assert (
        browser.post("/users/sign_in", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.9.9.9").status_code
        == 200
    )
    assert browser.post("/users/sign_in", {"username": "nobody", "password": "x"}).status_code == 200
    assert browser.post("/users/sign_in", {"username": "alice", "password": "password-123"}).status_code == 302
    rows = new_events(start)
    assert [(e.action, e.entity_type, e.target_details, e.author_kind) for e in rows] == [
        ("user_sign_in_failed", "User", "alice", "anonymous"),
        ("user_sign_in_failed", "Instance", "nobody", "anonymous"),
        ("user_signed_in", "User", "alice", "session"),
    ]
    assert rows[0].ip_address == "10.9.9.9"
    assert rows[2].author_id == user.pk
    assert "wrong" not in json.dumps([e.details for e in rows])


def test_package_events_settings_and_cleanup(client, project, maintainer):
    developer = person(AccessLevel.DEVELOPER, project=project)
    npm = f"/api/v4/projects/{project.pk}/packages/npm/@acme%2flib"
    assert (
        client.put(npm, npm_document("@acme/lib", "1.0.0"), "application/json", **developer.headers).status_code == 200
    )
    tags = f"/api/v4/projects/{project.pk}/packages/npm/-/package/@acme%2flib/dist-tags/stable"
    assert client.put(tags, '"1.0.0"', "application/json", **developer.headers).status_code == 204
    settings_url = f"/api/v4/projects/{project.pk}/packages/settings"
    change = json.dumps({"generic_duplicates_allowed": False})
    assert client.put(settings_url, change, "application/json", **maintainer.headers).status_code == 200
    cleanup_url = f"/api/v4/projects/{project.pk}/packages/cleanup_policy"
    policy = json.dumps({"name_regex_delete": ".*"})
    assert client.put(cleanup_url, policy, "application/json", **maintainer.headers).status_code == 200
    start = last_id()
    tasks.apply_cleanup_policy(project.pk, purge=False)

    rows = list(AuditEvent.objects.filter(entity_type="Project", entity_id=project.pk).order_by("pk"))
    summary = [(e.action, e.author_kind, e.details.get("change")) for e in rows if e.action != "member_added"]
    assert summary == [
        ("package_published", "personal", None),
        ("package_updated", "personal", None),
        ("package_settings_changed", "personal", "generic_duplicates_allowed"),
        ("cleanup_policy_changed", "personal", "name_regex_delete"),
        ("package_deleted", "system", None),
    ]
    updated = next(e for e in rows if e.action == "package_updated")
    assert (
        updated.details["request"]
        == f"PUT /api/v4/projects/{project.pk}/packages/npm/-/package/@acme/lib/dist-tags/stable"
    )
    settings_change = next(e for e in rows if e.action == "package_settings_changed")
    assert (settings_change.details["from"], settings_change.details["to"]) == (True, False)
    (deleted,) = new_events(start)
    assert (deleted.author_name, deleted.target_details) == ("cleanup policy", "@acme/lib@1.0.0")
    assert PackageVersion.objects.get().status == "pending_destruction"
    assert CleanupPolicy.objects.get().name_regex_delete == ".*"


def test_protection_rule_changes_record_before_and_after(client, project, maintainer):
    rules = f"/api/v4/projects/{project.pk}/packages/protection/rules"
    body = {"package_name_pattern": "a*", "package_type": "pypi", "minimum_access_level_for_push": "owner"}
    rule_id = client.post(rules, json.dumps(body), "application/json", **maintainer.headers).json()["id"]
    patch = json.dumps({"minimum_access_level_for_push": "maintainer"})
    assert client.patch(f"{rules}/{rule_id}", patch, "application/json", **maintainer.headers).status_code == 200
    assert client.delete(f"{rules}/{rule_id}", **maintainer.headers).status_code == 204
    rows = list(AuditEvent.objects.filter(action__startswith="package_protection_rule").order_by("pk"))
    assert [(e.action, e.target_id, e.target_details) for e in rows] == [
        ("package_protection_rule_created", str(rule_id), "pypi a*"),
        ("package_protection_rule_updated", str(rule_id), "pypi a*"),
        ("package_protection_rule_deleted", str(rule_id), "pypi a*"),
    ]
    assert rows[1].details == {"change": "minimum_access_level_for_push", "from": "owner", "to": "maintainer"}


# --- reading the trail ---------------------------------------------------------------------------


@pytest.fixture
def trail():
    acme = GroupFactory(path="acme")
    sub = GroupFactory(path="sub", parent=acme)
    inside = ProjectFactory(group=sub, path="inside")
    outside = ProjectFactory(group=GroupFactory(path="other"), path="outside")
    from accounts import audit

    old = audit.record("trail", inside, details={"change": "visibility", "from": "private", "to": "internal"})
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    audit.record("trail", sub)
    audit.record("trail", outside)
    audit.record("trail", acme)
    return {"acme": acme, "sub": sub, "inside": inside, "outside": outside}


def listed(client, url, headers, **params):
    response = client.get(url, {"per_page": 100, **params}, **headers)
    assert response.status_code == 200, response.content
    return [(e["entity_type"], e["details"]["entity_path"]) for e in response.json() if e["event_name"] == "trail"]


def test_who_reads_which_trail(client, trail):
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext)
    owner = person(AccessLevel.OWNER, group=trail["acme"])
    maintainer = person(AccessLevel.MAINTAINER, group=trail["acme"])
    developer = person(AccessLevel.DEVELOPER, project=trail["inside"])
    base = [("Group", "acme"), ("Project", "other/outside"), ("Group", "acme/sub"), ("Project", "acme/sub/inside")]

    assert listed(client, "/api/v4/audit_events", admin) == base  # newest first
    assert client.get("/api/v4/audit_events", **owner.headers).status_code == 403
    assert client.get("/api/v4/audit_events").status_code == 401

    group_url = f"/api/v4/groups/{trail['acme'].pk}/audit_events"
    in_group = listed(client, group_url, owner.headers)
    assert ("Project", "other/outside") not in in_group
    assert in_group == [base[0], base[2], base[3]]
    assert client.get(group_url, **maintainer.headers).status_code == 403

    project_url = f"/api/v4/projects/{trail['inside'].pk}/audit_events"
    assert listed(client, project_url, maintainer.headers) == [base[3]]
    assert client.get(project_url, **developer.headers).status_code == 403


def test_filters_and_pagination(client, trail):
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext)
    url = "/api/v4/audit_events"
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    recent = listed(client, url, admin, created_after=yesterday)
    assert ("Project", "acme/sub/inside") not in recent
    old = listed(client, url, admin, created_before=yesterday)
    assert old == [("Project", "acme/sub/inside")]
    assert set(listed(client, url, admin, entity_type="Group")) == {("Group", "acme"), ("Group", "acme/sub")}
    page = client.get(url, {"per_page": 1, "page": 2, "entity_type": "Group"}, **admin)
    assert page["X-Page"] == "2" and page["X-Per-Page"] == "1" and page["X-Total"] == "2"
    assert len(page.json()) == 1
    for bad in ({"created_after": "yesterday"}, {"created_before": "2026-13-40"}, {"entity_type": "Blob"}):
        response = client.get(url, bad, **admin)
        assert response.status_code == 400, bad
        assert "invalid" in response.json()["message"] or "valid value" in response.json()["message"]


def test_pages_list_the_same_trails(trail):
    owner = person(AccessLevel.OWNER, group=trail["acme"])
    browser = Client()
    browser.force_login(owner.user)
    group_page = browser.get("/groups/acme/-/audit_events").content.decode()
    assert "Project acme/sub/inside" in group_page and "other/outside" not in group_page
    assert "visibility" in group_page
    filtered = browser.get("/groups/acme/-/audit_events", {"entity_type": "Group"}).content.decode()
    assert "Project acme/sub/inside" not in filtered and "Group acme/sub" in filtered
    assert browser.get("/acme/sub/inside/-/audit_events").status_code == 200
    assert browser.get("/-/audit_events").status_code == 403
    admin = Client()
    admin.force_login(AdminFactory())
    assert "other/outside" in admin.get("/-/audit_events").content.decode()
    developer = person(AccessLevel.DEVELOPER, project=trail["inside"])
    browser.force_login(developer.user)
    assert browser.get("/acme/sub/inside/-/audit_events").status_code == 403


def test_events_never_change_and_retention_removes_old_ones(settings, trail):
    event = AuditEvent.objects.first()
    event.action = "rewritten"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
    from django.contrib.admin.sites import site

    from accounts.admin import AuditEventAdmin

    model_admin = AuditEventAdmin(AuditEvent, site)
    assert not model_admin.has_change_permission(None) and not model_admin.has_delete_permission(None)
    assert not model_admin.has_add_permission(None)

    total = AuditEvent.objects.count()
    settings.AUDIT_RETENTION_DAYS = 5
    assert tasks.purge_old_audit_events() == 1
    assert AuditEvent.objects.count() == total - 1
    settings.AUDIT_RETENTION_DAYS = 0
    AuditEvent.objects.update(created_at=timezone.now() - timedelta(days=4000))
    assert tasks.purge_old_audit_events() == 0


@contextlib.contextmanager
def table_refusing(table, operation):
    """PostgreSQL refuses every `operation` (INSERT, UPDATE) on `table` (a trigger), as a full or
    broken table would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_write() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'write refused'; END $$"
            " LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER refuse_write BEFORE {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_write()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER refuse_write ON {table}")
            cursor.execute("DROP FUNCTION refuse_write()")


def audit_store_refusing():
    return table_refusing(AuditEvent._meta.db_table, "INSERT")


@pytest.mark.django_db(transaction=True)
def test_a_change_whose_audit_event_cannot_be_written_does_not_happen(project):
    owner = person(AccessLevel.OWNER, project=project)
    target = UserFactory(username="newcomer")
    client = Client(raise_request_exception=False)
    with audit_store_refusing():
        put = client.put(
            f"/api/v4/projects/{project.pk}",
            json.dumps({"visibility": "internal"}),
            "application/json",
            **owner.headers,
        )
        assert put.status_code == 500
        project.refresh_from_db()
        assert project.visibility == "private"
        added = client.post(
            f"/api/v4/projects/{project.pk}/members", {"user_id": target.pk, "access_level": 30}, **owner.headers
        )
        assert added.status_code == 500
        assert not Membership.objects.filter(project=project, user=target).exists()


@pytest.mark.django_db(transaction=True)
def test_an_audit_event_is_never_left_for_a_change_that_failed(project):
    """The API runs each write in one transaction: the event recorded before the change is
    rolled back with it."""
    owner = person(AccessLevel.OWNER, project=project)
    project.group.visibility = "internal"
    project.group.save()
    start = last_id()
    client = Client(raise_request_exception=False)
    with table_refusing(Project._meta.db_table, "UPDATE"):
        put = client.put(
            f"/api/v4/projects/{project.pk}",
            json.dumps({"visibility": "internal"}),
            "application/json",
            **owner.headers,
        )
    assert put.status_code == 500, put.content
    project.refresh_from_db()
    assert project.visibility == "private"
    assert new_events(start) == []


def test_a_token_noted_from_an_address_today_costs_no_round_trip_after_that(client, project):
    """Issue 23: the once-a-day note was a cache round trip on every request through Django; a
    worker that has noted it asks the cache no more (the cache key, deleted behind its back, stays
    absent), and still records one event per address."""
    from django.core.cache import caches

    from tests.factories import member

    token = AccessTokenFactory(user=member(project))
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    start = last_id()
    key = f"audit-seen:{token.digest[:16]}:10.0.0.7:{timezone.now().date().isoformat()}"
    assert client.get(url, REMOTE_ADDR="10.0.0.7", **auth_headers(token.plaintext)).status_code == 404
    assert caches["counters"].has_key(key)

    caches["counters"].delete(key)
    for _ in range(2):
        assert client.get(url, REMOTE_ADDR="10.0.0.7", **auth_headers(token.plaintext)).status_code == 404
    assert not caches["counters"].has_key(key)

    assert client.get(url, REMOTE_ADDR="10.0.0.8", **auth_headers(token.plaintext)).status_code == 404
    rows = new_events(start, action="token_used_from_new_ip")
    assert [e.ip_address for e in rows] == ["10.0.0.7", "10.0.0.8"]
