"""Paths under /api/v4/ that no route knows answer GitLab's JSON, never a web page; a known route
asked with a method it lacks is a JSON 405; GET /version answers as GitLab does."""

from importlib import metadata

import pytest

from tests.factories import AccessTokenFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "404 Not Found"}


@pytest.fixture
def headers():
    return auth_headers(AccessTokenFactory().plaintext)


@pytest.mark.parametrize("method", ["get", "post", "put", "delete", "patch"])
@pytest.mark.parametrize("path", ["/api/v4/nonexistent", "/api/v4/runners/all", "/api/v4/users/sign_in", "/api/v4/"])
def test_unknown_paths_are_json_404_for_everyone(client, headers, method, path):
    for credentials in ({}, headers):
        response = getattr(client, method)(path, **credentials)
        assert response.status_code == 404, (path, response.status_code, response.content[:200])
        assert response["Content-Type"] == "application/json"
        assert response.json() == NOT_FOUND


def test_unknown_post_is_no_csrf_page(client):
    """Django's CSRF check (the web UI's) never answers under /api/v4/."""
    csrf_client = type(client)(enforce_csrf_checks=True)
    response = csrf_client.post("/api/v4/nonexistent", {"a": "b"})
    assert response.status_code == 404 and response.json() == NOT_FOUND


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/api/v4/version", "GET"),
        ("delete", "/api/v4/projects", "GET, POST"),
        ("patch", "/api/v4/user", "GET"),
    ],
)
def test_wrong_method_is_json_405_before_authentication(client, headers, method, path, allowed):
    for credentials in ({}, headers):
        response = getattr(client, method)(path, **credentials)
        assert response.status_code == 405, response.content
        assert response.json() == {"error": "405 Not Allowed"}
        assert set(response["Allow"].split(", ")) >= set(allowed.split(", "))


def test_version(client, headers):
    response = client.get("/api/v4/version", **headers)
    assert response.status_code == 200
    data = response.json()
    assert data["version"] == metadata.version("packhouse")
    assert isinstance(data["revision"], str) and data["revision"]
    assert client.get("/api/v4/version").status_code == 401


def test_version_answers_the_configured_revision(client, headers, settings):
    from api.version import revision

    settings.REVISION = "abc1234"
    revision.cache_clear()
    try:
        assert client.get("/api/v4/version", **headers).json()["revision"] == "abc1234"
    finally:
        revision.cache_clear()


def test_a_nul_in_a_reference_is_no_server_error(client, headers):
    """Django decodes %00 into the path; no project or group path holds one (was a 500)."""
    from tests.factories import MembershipFactory, ProjectFactory

    project = ProjectFactory()
    user_token = AccessTokenFactory()
    MembershipFactory(user=user_token.user, project=project, access_level=40)
    own = auth_headers(user_token.plaintext)
    for methods, path in (
        (("get", "put", "post"), f"/api/v4/projects/{project.pk}/packages/generic/../%00/%0A"),
        (("get", "put", "post"), "/api/v4/projects/acme%2F%00"),
        (("get",), "/api/v4/groups/acme%00/subgroups"),
        (("get",), f"/api/v4/projects/acme%2F%00/packages/generic/a/1/{project.pk}"),
    ):
        for method in methods:
            response = getattr(client, method)(path, **own)
            assert response.status_code == 404, (method, path, response.status_code)
            assert "json" in response["Content-Type"]
