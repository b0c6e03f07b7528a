"""The Django admin for accounts: pages render, digests stay hidden, bulk actions work."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccessToken, CiJob, DeployToken
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    CiJobFactory,
    DeployTokenFactory,
    JobTokenScopeLinkFactory,
    MembershipFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


def test_every_admin_page_renders(admin_client):
    project = ProjectFactory()
    token = AccessTokenFactory()
    deploy = DeployTokenFactory(project=project)
    job = CiJobFactory(project=project)
    MembershipFactory(project=project)
    JobTokenScopeLinkFactory(source_project=project, target_project=ProjectFactory())
    for model in ("user", "group", "project", "membership", "accesstoken", "deploytoken", "cijob", "jobtokenscopelink"):
        response = admin_client.get(reverse(f"admin:accounts_{model}_changelist"))
        assert response.status_code == 200, model
    for row, model in ((token, "accesstoken"), (deploy, "deploytoken")):
        page = admin_client.get(reverse(f"admin:accounts_{model}_change", args=[row.pk]))
        assert page.status_code == 200
        assert row.digest not in page.content.decode()
        assert row.plaintext not in page.content.decode()
    assert admin_client.get(reverse("admin:accounts_cijob_change", args=[job.pk])).status_code == 200


def test_token_filters(admin_client):
    old = AccessTokenFactory(name="old-one")
    AccessToken.objects.filter(pk=old.pk).update(last_used_at=timezone.now() - timedelta(days=100))
    AccessTokenFactory(name="fresh-one", expires_at=timezone.now() - timedelta(days=1))
    url = reverse("admin:accounts_accesstoken_changelist")
    unused = admin_client.get(url + "?unused=90").content.decode()
    assert "old-one" in unused and "fresh-one" not in unused
    expired = admin_client.get(url + "?expired=yes").content.decode()
    assert "fresh-one" in expired and "old-one" not in expired
    assert admin_client.get(url + "?kind=project&revoked__exact=1").status_code == 200


def test_bulk_revoke_and_finish_actions(admin_client):
    tokens = [AccessTokenFactory(), AccessTokenFactory()]
    deploy = DeployTokenFactory(project=ProjectFactory())
    response = admin_client.post(
        reverse("admin:accounts_accesstoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [t.pk for t in tokens]},
    )
    assert response.status_code == 302
    assert all(AccessToken.objects.filter(pk__in=[t.pk for t in tokens]).values_list("revoked", flat=True))
    admin_client.post(
        reverse("admin:accounts_deploytoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [deploy.pk]},
    )
    assert DeployToken.objects.get(pk=deploy.pk).revoked

    job = CiJobFactory()
    admin_client.post(
        reverse("admin:accounts_cijob_changelist"), {"action": "finish_jobs", "_selected_action": [job.pk]}
    )
    job.refresh_from_db()
    assert job.status == CiJob.Status.CANCELED and job.finished_at is not None
