"""Webhook pages: a Maintainer adds a project hook (a private address refused unless allowed),
sees it, tests it against a real listener, reads the delivery log, resends, edits it without
ever seeing the token, and deletes it; a disabled hook says so; Owners manage group hooks."""

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from registry import secrets
from registry.models import Webhook
from tests.factories import GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.hook_listener import Listener

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


def signed_in(level, **where):
    user = UserFactory()
    MembershipFactory(user=user, access_level=level, **where)
    client = Client()
    client.force_login(user)
    return client


def test_project_hook_pages(project, settings, django_capture_on_commit_callbacks):
    browser = signed_in(AccessLevel.MAINTAINER, project=project)
    base = "/acme/tools/-/hooks"
    refused = browser.post(base, {"url": "http://10.0.0.1/hook", "package_events": "on"})
    assert refused.status_code == 400
    assert "Requests to the local network are not allowed" in refused.content.decode()
    assert not Webhook.objects.exists()

    settings.WEBHOOK_ALLOW_PRIVATE = True
    with Listener() as listener:
        form = {"url": listener.url, "token": "page-secret", "package_events": "on", "enable_ssl_verification": "on"}
        assert browser.post(base, form).status_code == 302
        hook = Webhook.objects.get()
        assert secrets.decrypt(hook.encrypted_token) == "page-secret"
        assert listener.url in browser.get(base).content.decode()
        page = browser.get(f"{base}/{hook.pk}").content.decode()
        assert "page-secret" not in page and "Nothing delivered yet." in page

        with django_capture_on_commit_callbacks(execute=True):
            assert browser.post(f"{base}/{hook.pk}/test").status_code == 302
        assert listener.requests[0]["headers"]["X-Gitlab-Token"] == "page-secret"
        page = browser.get(f"{base}/{hook.pk}").content.decode()
        assert "<td>test</td>" in page and "<td>200</td>" in page and "received" in page
        delivery = hook.deliveries.get()
        with django_capture_on_commit_callbacks(execute=True):
            assert browser.post(f"{base}/{hook.pk}/deliveries/{delivery.pk}/resend").status_code == 302
        assert len(listener.requests) == 2

        # saving without a token keeps it
        edit = {"url": listener.url, "name": "ci", "package_events": "on"}
        assert browser.post(f"{base}/{hook.pk}", edit).status_code == 302
        hook.refresh_from_db()
        assert (hook.name, hook.enable_ssl_verification, secrets.decrypt(hook.encrypted_token)) == (
            "ci",
            False,
            "page-secret",
        )
    Webhook.objects.filter(pk=hook.pk).update(consecutive_failures=40, disabled_at="2026-11-30T00:00:00Z")
    assert "Disabled on 2026-11-30" in browser.get(f"{base}/{hook.pk}").content.decode()
    assert "disabled</span> after 40 failures" in browser.get(base).content.decode()
    assert browser.post(f"{base}/{hook.pk}/delete").status_code == 302
    assert not Webhook.objects.exists()


def test_who_manages_hook_pages(project, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    developer = signed_in(AccessLevel.DEVELOPER, project=project)
    assert developer.get("/acme/tools/-/hooks").status_code == 403
    maintainer = signed_in(AccessLevel.MAINTAINER, group=project.group)
    assert maintainer.get("/groups/acme/-/hooks").status_code == 403
    owner = signed_in(AccessLevel.OWNER, group=project.group)
    assert owner.post("/groups/acme/-/hooks", {"url": "http://127.0.0.1:9/", "package_events": "on"}).status_code == 302
    assert Webhook.objects.get().group_id == project.group.pk
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(UserFactory(is_superuser=True))
    assert strict.post(f"/groups/acme/-/hooks/{Webhook.objects.get().pk}/delete").status_code == 403
    assert Webhook.objects.exists()
