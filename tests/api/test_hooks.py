"""Package webhooks: GitLab's hook API for projects and groups, tokens kept encrypted and never
answered, refused private addresses, and deliveries to a real HTTP listener after commit
(headers, body, retries with backoff, no redirects, the delivery log, test and resend, a hook
disabled after 40 failures in a row)."""

import hashlib
import json

import pytest

from accounts.roles import AccessLevel
from registry import secrets, webhooks
from registry.models import Webhook, WebhookDelivery
from tests.accounts.conftest import person
from tests.factories import GroupFactory, ProjectFactory
from tests.hook_listener import Listener

pytestmark = pytest.mark.django_db

TOKEN = "s3cr3t-hook-token"


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


@pytest.fixture
def maintainer(project):
    return person(AccessLevel.MAINTAINER, project=project)


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True


def hooks_url(project, suffix=""):
    return f"/api/v4/projects/{project.pk}/hooks{suffix}"


def create(client, path, headers, **fields):
    return client.post(path, json.dumps(fields), "application/json", **headers)


def test_create_list_update_delete_never_answers_the_token(client, project, maintainer, allow_private):
    created = create(client, hooks_url(project), maintainer.headers, url="http://127.0.0.1:9/hook", token=TOKEN)
    assert created.status_code == 201, created.content
    hook = created.json()
    assert hook["url"] == "http://127.0.0.1:9/hook"
    assert (hook["project_id"], hook["package_events"], hook["enable_ssl_verification"]) == (project.pk, True, True)
    assert hook["alert_status"] == "executable"
    row = Webhook.objects.get()
    assert TOKEN not in row.encrypted_token and secrets.decrypt(row.encrypted_token) == TOKEN
    listed = client.get(hooks_url(project), **maintainer.headers)
    assert [h["id"] for h in listed.json()] == [hook["id"]]
    changed = client.put(
        hooks_url(project, f"/{hook['id']}"),
        json.dumps({"enable_ssl_verification": False, "name": "ci"}),
        "application/json",
        **maintainer.headers,
    )
    assert changed.status_code == 200
    assert (changed.json()["enable_ssl_verification"], changed.json()["name"]) == (False, "ci")
    assert secrets.decrypt(Webhook.objects.get().encrypted_token) == TOKEN  # kept when not sent
    for response in (created, listed, changed, client.get(hooks_url(project, f"/{hook['id']}"), **maintainer.headers)):
        assert TOKEN not in response.content.decode()
    assert client.delete(hooks_url(project, f"/{hook['id']}"), **maintainer.headers).status_code == 204
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://127.0.0.1:8080/",
        "http://localhost/x",
        "http://169.254.169.254/latest",
        "http://[::1]/",
    ],
)
def test_private_addresses_are_refused_at_creation(client, project, maintainer, url):
    response = create(client, hooks_url(project), maintainer.headers, url=url)
    assert response.status_code == 400
    assert (
        response.json()["message"] == "400 Bad request - url is blocked: Requests to the local network are not allowed"
    )
    assert not Webhook.objects.exists()


def test_bad_urls_and_who_manages_hooks(client, project, maintainer, allow_private):
    for url in ("ftp://example.com/", "http://user:pw@127.0.0.1/", "not a url", ""):
        assert create(client, hooks_url(project), maintainer.headers, url=url).status_code == 400, url
    developer = person(AccessLevel.DEVELOPER, project=project)
    assert create(client, hooks_url(project), developer.headers, url="http://127.0.0.1/").status_code == 403
    assert client.get(hooks_url(project), **developer.headers).status_code == 403
    group_hooks = f"/api/v4/groups/{project.group.pk}/hooks"
    group_maintainer = person(AccessLevel.MAINTAINER, group=project.group)
    assert create(client, group_hooks, group_maintainer.headers, url="http://127.0.0.1/").status_code == 403
    owner = person(AccessLevel.OWNER, group=project.group)
    created = create(client, group_hooks, owner.headers, url="http://127.0.0.1/")
    assert created.status_code == 201 and created.json()["group_id"] == project.group.pk


def publish(client, project, headers, name="tool", version="1.0", data=b"bytes\n"):
    url = f"/api/v4/projects/{project.pk}/packages/generic/{name}/{version}/{name}.bin"
    return client.put(url, data=data, content_type="application/octet-stream", **headers)


def test_publish_and_delete_are_delivered_after_commit(
    client, project, maintainer, allow_private, django_capture_on_commit_callbacks
):
    subgroup_project = ProjectFactory(group=GroupFactory(path="sub", parent=project.group), path="deep")
    with Listener() as listener, Listener() as group_listener:
        Webhook.objects.create(project=project, url=listener.url, encrypted_token=secrets.encrypt(TOKEN))
        Webhook.objects.create(group=project.group, url=group_listener.url)
        Webhook.objects.create(project=project, url=listener.url, package_events=False)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert publish(client, project, maintainer.headers).status_code == 201
        assert listener.requests == [] and group_listener.requests == []  # nothing before the commit
        for callback in callbacks:
            callback()
        (request,) = listener.requests
        assert request["headers"]["X-Gitlab-Event"] == "Package Hook"
        assert request["headers"]["X-Gitlab-Token"] == TOKEN
        assert request["headers"]["Content-Type"] == "application/json"
        body = json.loads(request["body"])
        assert body["object_kind"] == "package" and body["event_type"] == "published"
        assert body["package"]["name"] == "tool" and body["package"]["version"] == "1.0"
        assert body["package"]["package_type"] == "generic"
        assert body["package"]["files"] == [
            {
                "file_name": "tool.bin",
                "sha256": hashlib.sha256(b"bytes\n").hexdigest(),
                "size": 6,
            }
        ]
        assert body["project"]["path_with_namespace"] == "acme/tools"
        assert body["user"]["username"] == maintainer.user.username
        assert body["actor"] == {
            "kind": "personal",
            "name": maintainer.user.username,
            "token_id": maintainer.token.pk,
            "token_name": maintainer.token.name,
        }
        assert maintainer.token.plaintext not in request["body"].decode()
        assert "X-Gitlab-Token" not in group_listener.requests[0]["headers"]

        # a file added to the version is no new version: nothing sent
        with django_capture_on_commit_callbacks(execute=True):
            url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0/extra.bin"
            assert client.put(url, data=b"x", content_type="text/plain", **maintainer.headers).status_code == 201
        assert len(listener.requests) == 1

        version_id = body["package"]["id"]
        with django_capture_on_commit_callbacks(execute=True):
            deleted = client.delete(f"/api/v4/projects/{project.pk}/packages/{version_id}", **maintainer.headers)
            assert deleted.status_code == 204
        assert [b["event_type"] for b in listener.bodies()] == ["published", "deleted"]
        assert [f["file_name"] for f in listener.bodies()[1]["package"]["files"]] == ["tool.bin", "extra.bin"]

        developer = person(AccessLevel.DEVELOPER, project=subgroup_project)
        with django_capture_on_commit_callbacks(execute=True):
            assert publish(client, subgroup_project, developer.headers).status_code == 201
        assert [b["project"]["path_with_namespace"] for b in group_listener.bodies()] == [
            "acme/tools",
            "acme/tools",
            "acme/sub/deep",
        ]
    log = WebhookDelivery.objects.filter(hook__url=listener.url).order_by("pk")
    assert [(d.event, d.status_code, d.attempt) for d in log] == [("published", 200, 1), ("deleted", 200, 1)]
    assert all(d.duration_ms is not None and '"received"' in d.response_excerpt for d in log)


def test_a_listener_that_fails_twice_gets_the_third_try(
    client, project, maintainer, allow_private, django_capture_on_commit_callbacks
):
    with Listener(statuses=(500, 503, 200)) as listener:
        hook = Webhook.objects.create(project=project, url=listener.url)
        delivery = WebhookDelivery.objects.create(hook=hook, event="published", payload={"object_kind": "package"})
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.deliver(delivery.pk)  # the worker's task; eager, each retry runs at once
        assert len(listener.requests) == 3
    log = list(hook.deliveries.order_by("pk"))
    assert [(d.attempt, d.status_code) for d in log] == [(1, 500), (2, 503), (3, 200)]
    assert all(listener.bodies()[i] == {"object_kind": "package"} for i in range(3))
    hook.refresh_from_db()
    assert hook.consecutive_failures == 0 and hook.disabled_at is None


def test_gives_up_after_four_tries_and_never_follows_redirects(
    client, project, allow_private, django_capture_on_commit_callbacks
):
    with Listener(statuses=(500,)) as failing, Listener(statuses=(302,), headers={"Location": "/elsewhere"}) as moved:
        hook = Webhook.objects.create(project=project, url=failing.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.deliver(WebhookDelivery.objects.create(hook=hook, event="test", payload={}).pk)
        assert len(failing.requests) == webhooks.MAX_ATTEMPTS
        redirect_hook = Webhook.objects.create(project=project, url=moved.url)
        result = webhooks.deliver(WebhookDelivery.objects.create(hook=redirect_hook, event="test", payload={}).pk)
        assert result.status_code == 302 and [r["path"] for r in moved.requests] == ["/hook"]
    hook.refresh_from_db()
    assert hook.consecutive_failures == webhooks.MAX_ATTEMPTS


def test_forty_failures_in_a_row_disable_the_hook(client, project, maintainer, allow_private):
    with Listener(statuses=(404,)) as listener:
        hook = Webhook.objects.create(project=project, url=listener.url, consecutive_failures=38)
        for _ in range(2):
            webhooks.deliver(WebhookDelivery.objects.create(hook=hook, event="test", payload={}).pk)
        hook.refresh_from_db()
        assert hook.consecutive_failures == 40 and hook.disabled_at is not None
        shown = client.get(hooks_url(project, f"/{hook.pk}"), **maintainer.headers).json()
        assert shown["alert_status"] == "disabled"
        assert publish(client, project, maintainer.headers).status_code == 201
        assert not WebhookDelivery.objects.filter(event="published").exists()  # a disabled hook hears nothing
        # saving it again enables it
        put = client.put(
            hooks_url(project, f"/{hook.pk}"), json.dumps({"name": "again"}), "application/json", **maintainer.headers
        )
        assert put.json()["alert_status"] == "executable"


def test_the_delivery_log_test_and_resend(
    client, project, maintainer, allow_private, django_capture_on_commit_callbacks
):
    with Listener() as listener:
        hook = Webhook.objects.create(project=project, url=listener.url)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(hooks_url(project, f"/{hook.pk}/test/package_events"), **maintainer.headers)
        assert response.status_code == 201
        assert listener.bodies()[0]["event_type"] == "test"
        events = client.get(hooks_url(project, f"/{hook.pk}/events"), **maintainer.headers).json()
        assert [(e["event"], e["response_status"]) for e in events] == [("test", 200)]
        with django_capture_on_commit_callbacks(execute=True):
            resend = client.post(
                hooks_url(project, f"/{hook.pk}/events/{events[0]['id']}/resend"), **maintainer.headers
            )
        assert resend.status_code == 201
        assert len(listener.requests) == 2 and listener.bodies()[1] == listener.bodies()[0]
        assert client.post(hooks_url(project, f"/{hook.pk}/test/push_events"), **maintainer.headers).status_code == 422


def test_a_listener_that_never_answers_times_out_and_is_tried_again(
    project, allow_private, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(webhooks, "TIMEOUT", 0.2)  # the listener below never answers in time
    with Listener(gated=True) as silent:
        hook = Webhook.objects.create(project=project, url=silent.url)
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.deliver(WebhookDelivery.objects.create(hook=hook, event="test", payload={}).pk)
        assert len(silent.requests) == webhooks.MAX_ATTEMPTS
    log = list(hook.deliveries.order_by("pk"))
    assert [d.attempt for d in log] == [1, 2, 3, 4]
    assert all(d.status_code is None and "Timeout" in d.error for d in log), [d.error for d in log]


def test_hidden_versions_are_never_announced(
    client, project, maintainer, allow_private, django_capture_on_commit_callbacks
):
    """Maven's uploaded metadata lives in a hidden version: neither its upload nor its removal
    (when the last real version goes) is an event; the real version's are."""
    from registry import tasks

    base = f"/api/v4/projects/{project.pk}/packages/maven/com/example/app"
    with Listener() as listener:
        Webhook.objects.create(project=project, url=listener.url)
        with django_capture_on_commit_callbacks(execute=True):
            for path, data in (("1.0/app-1.0.jar", b"jar"), ("maven-metadata.xml", b"<metadata/>")):
                response = client.put(
                    f"{base}/{path}", data=data, content_type="application/octet-stream", **maintainer.headers
                )
                assert response.status_code == 200
        version = project.packages.get().versions.get(version="1.0")
        with django_capture_on_commit_callbacks(execute=True):
            assert (
                client.delete(f"/api/v4/projects/{project.pk}/packages/{version.pk}", **maintainer.headers).status_code
                == 204
            )
        with django_capture_on_commit_callbacks(execute=True):
            tasks.purge_pending_destruction()
        assert [(b["event_type"], b["package"]["version"]) for b in listener.bodies()] == [
            ("published", "1.0"),
            ("deleted", "1.0"),
        ]
    # the hidden metadata version did go, unannounced
    assert not project.packages.get().versions.exclude(status="pending_destruction").exists()
