"""Hostile JSON bodies on the management API are 400 in GitLab's shape, never a 500."""

import pytest

from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, AdminFactory, MembershipFactory, ProjectFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_deeply_nested_json_is_400_everywhere(client):
    admin = auth_headers(AccessTokenFactory(user=AdminFactory()).plaintext)
    project = ProjectFactory()
    maintainer = AccessTokenFactory()
    MembershipFactory(user=maintainer.user, project=project, access_level=AccessLevel.MAINTAINER)
    for method, url, headers in (
        ("post", "/api/v4/projects", admin),
        ("post", "/api/v4/groups", admin),
        ("put", f"/api/v4/projects/{project.pk}/packages/cleanup_policy", auth_headers(maintainer.plaintext)),
        ("put", f"/api/v4/projects/{project.pk}/packages/settings", auth_headers(maintainer.plaintext)),
    ):
        response = getattr(client, method)(url, data=DEEP, content_type="application/json", **headers)
        assert response.status_code == 400, (url, response.status_code)
        assert "nested too deeply" in response.json()["message"], url


def test_deeply_nested_json_is_400_on_the_package_endpoints(client):
    """npm reads its publish and dist-tag bodies itself: the same refusal, in npm's shape."""
    project = ProjectFactory()
    developer = AccessTokenFactory()
    MembershipFactory(user=developer.user, project=project, access_level=AccessLevel.DEVELOPER)
    headers = auth_headers(developer.plaintext)
    base = f"/api/v4/projects/{project.pk}/packages/npm"
    for url in (f"{base}/tool", f"{base}/-/package/tool/dist-tags/beta"):
        response = client.put(url, data=DEEP, content_type="application/json", **headers)
        assert response.status_code == 400, (url, response.status_code)
        assert "error" in response.json(), url
