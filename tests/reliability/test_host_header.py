"""A Host header an attacker chose never reaches a URL Packhouse hands out."""

import pytest

from accounts.roles import AccessLevel
from tests.factories import AccessTokenFactory, MembershipFactory, ProjectFactory
from tests.formats.npm.npmdocs import publish_document
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(client):
    project = ProjectFactory(visibility="public")
    token = AccessTokenFactory(user=MembershipFactory(project=project, access_level=AccessLevel.DEVELOPER).user)
    url = f"/api/v4/projects/{project.pk}/packages/npm/tool"
    document = publish_document("tool", "1.0.0")
    headers = auth_headers(token.plaintext)
    assert client.put(url, document, content_type="application/json", **headers).status_code == 200
    return url


def test_a_host_outside_the_allowed_hosts_is_refused(client, published, settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    assert client.get(published, HTTP_HOST="evil.example").status_code == 400
    answer = client.get(published, HTTP_HOST="127.0.0.1")
    assert answer.status_code == 200
    assert answer.json()["versions"]["1.0.0"]["dist"]["tarball"].startswith("http://127.0.0.1/")


def test_the_external_url_wins_over_any_host(client, published, settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.EXTERNAL_URL = "https://packages.example.com"
    answer = client.get(published, HTTP_HOST="evil.example")
    tarball = answer.json()["versions"]["1.0.0"]["dist"]["tarball"]
    assert tarball.startswith("https://packages.example.com/api/v4/"), tarball


def test_the_default_allows_only_this_machine(monkeypatch):
    import importlib

    import packhouse.settings as packhouse_settings

    monkeypatch.delenv("PACKHOUSE_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("PACKHOUSE_EXTERNAL_URL", raising=False)
    assert importlib.reload(packhouse_settings).ALLOWED_HOSTS == ["localhost", "127.0.0.1", "[::1]"]
    monkeypatch.setenv("PACKHOUSE_EXTERNAL_URL", "https://packages.example.com")
    assert importlib.reload(packhouse_settings).ALLOWED_HOSTS == ["packages.example.com"]
    monkeypatch.delenv("PACKHOUSE_EXTERNAL_URL")
    importlib.reload(packhouse_settings)
