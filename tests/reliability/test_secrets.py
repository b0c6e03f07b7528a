"""Secrets after creation: never in admin pages, API listings or the database in plain text."""

import pytest

from accounts.models import AccessToken, CiJob, DeployToken
from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, AdminFactory, CiJobFactory, MembershipFactory, ProjectFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


def test_admin_pages_never_show_a_secret_or_its_digest(client):
    admin = AdminFactory()
    project = ProjectFactory()
    pat = AccessTokenFactory(user=admin)
    owner = AccessTokenFactory()
    MembershipFactory(user=owner.user, project=project, access_level=AccessLevel.MAINTAINER)
    created = client.post(
        f"/api/v4/projects/{project.pk}/deploy_tokens",
        data={"name": "ci", "scopes": ["read_package_registry"]},
        content_type="application/json",
        **auth_headers(owner.plaintext),
    )
    assert created.status_code == 201
    deploy_plaintext = created.json()["token"]
    deploy = DeployToken.objects.get(pk=created.json()["id"])
    job = CiJobFactory(project=project)
    client.force_login(admin)
    secrets = [pat.plaintext, deploy_plaintext, job.plaintext]
    digests = [AccessToken.objects.get(pk=pat.pk).digest, deploy.digest, CiJob.objects.get(pk=job.pk).token_digest]
    pages = [
        "/admin/accounts/accesstoken/",
        f"/admin/accounts/accesstoken/{pat.pk}/change/",
        "/admin/accounts/deploytoken/",
        f"/admin/accounts/deploytoken/{deploy.pk}/change/",
        "/admin/accounts/cijob/",
        f"/admin/accounts/cijob/{job.pk}/change/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        body = response.content.decode()
        for value in secrets + digests:
            assert value not in body, page
    listing = client.get(f"/api/v4/projects/{project.pk}/deploy_tokens", **auth_headers(owner.plaintext))
    assert deploy_plaintext not in listing.content.decode()
    assert "token" not in listing.json()[0]


def test_no_shared_cache_keeps_a_secret_or_private_content(client):
    """A created token is answered `no-store`; whatever a credential fetched is `private`."""
    owner = AccessTokenFactory()
    project = ProjectFactory(visibility="private")
    MembershipFactory(user=owner.user, project=project, access_level=AccessLevel.MAINTAINER)
    headers = auth_headers(owner.plaintext)
    created = client.post(
        f"/api/v4/projects/{project.pk}/deploy_tokens",
        data={"name": "ci", "scopes": ["read_package_registry"]},
        content_type="application/json",
        **headers,
    )
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    url = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin"
    assert client.put(url, data=b"tool", content_type="application/octet-stream", **headers)["Cache-Control"] == (
        "no-store"
    )
    download = client.get(url, **headers)
    assert download.status_code == 200 and download["Cache-Control"] == "private"
    assert client.get(f"/api/v4/projects/{project.pk}/packages", **headers)["Cache-Control"] == "private"
