"""Failed authentication is rate limited per client address: 429 with Retry-After."""

import pytest

from tests.factories import AccessTokenFactory, ProjectFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit(settings):
    settings.AUTH_FAILURE_LIMIT = 3
    settings.AUTH_FAILURE_WINDOW = 86400  # fixed windows: a day-long one keeps a boundary out of a test
    return 3


def test_repeated_failures_from_one_address_get_429(client, limit):
    project = ProjectFactory(visibility="public")
    url = f"/api/v4/projects/{project.pk}/packages/generic/p/1/f"
    for _ in range(limit):
        assert client.get(url, **auth_headers("glpat-guessing")).status_code == 401
    blocked = client.get(url, **auth_headers("glpat-guessing"))
    assert blocked.status_code == 429
    assert 1 <= int(blocked["Retry-After"]) <= 86400
    # Credentials from that address wait too; anonymous reads of public data do not.
    assert client.get(url, **auth_headers(AccessTokenFactory().plaintext)).status_code == 429
    assert client.get(url).status_code == 404
    # Another address is unaffected.
    assert client.get(url, REMOTE_ADDR="10.0.0.9", **auth_headers(AccessTokenFactory().plaintext)).status_code == 404


def test_management_api_answers_429_too(client, limit):
    for _ in range(limit):
        assert client.get("/api/v4/user", **auth_headers("glpat-guessing")).status_code == 401
    response = client.get("/api/v4/user", **auth_headers("glpat-guessing"))
    assert response.status_code == 429
    assert "Retry-After" in response


def test_forwarded_address_is_used_only_behind_trusted_proxies(client, limit, settings):
    project = ProjectFactory(visibility="public")
    url = f"/api/v4/projects/{project.pk}/packages/generic/p/1/f"
    for index in range(limit + 1):  # spoofed X-Forwarded-For is ignored by default
        response = client.get(url, HTTP_X_FORWARDED_FOR=f"192.0.2.{index}", **auth_headers("glpat-x"))
    assert response.status_code == 429
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get(url, HTTP_X_FORWARDED_FOR="198.51.100.7", **auth_headers("glpat-x")).status_code == 401


def test_tokens_never_appear_in_error_bodies_or_logs(client, caplog):
    project = ProjectFactory()
    url = f"/api/v4/projects/{project.pk}/packages/generic/p/1/f"
    secret = "glpat-" + "s3cr3t" * 5
    token = AccessTokenFactory()
    for headers in (auth_headers(secret), auth_headers(secret, "basic:someone"), auth_headers(token.plaintext)):
        response = client.put(url, data=b"x", content_type="application/octet-stream", **headers)
        assert secret.encode() not in response.content
        assert token.plaintext.encode() not in response.content
    assert secret not in caplog.text
    assert token.plaintext not in caplog.text


def test_failed_web_sign_ins_count_and_a_good_one_forgives_them(client, limit):
    from tests.factories import UserFactory

    user = UserFactory()
    project = ProjectFactory(visibility="public")
    url = f"/api/v4/projects/{project.pk}/packages/generic/p/1/f"
    for _ in range(limit - 1):
        assert client.post("/users/sign_in", {"username": user.username, "password": "wrong"}).status_code == 200
    assert client.get(url, **auth_headers("glpat-guessing")).status_code == 401  # the limit-th failure
    assert client.get(url, **auth_headers(AccessTokenFactory().plaintext)).status_code == 429
    assert client.post("/users/sign_in", {"username": user.username, "password": "password-123"}).status_code == 302
    assert client.get(url, **auth_headers(AccessTokenFactory().plaintext)).status_code == 404  # forgiven


def test_package_requests_are_limited_per_credential_and_per_address(client, settings):
    settings.PACKAGE_REQUEST_LIMIT = 3
    settings.PACKAGE_REQUEST_LIMIT_ANONYMOUS = 2
    settings.PACKAGE_REQUEST_WINDOW = 86400
    project = ProjectFactory(visibility="public")
    generic = f"/api/v4/projects/{project.pk}/packages/generic/p/1/f"
    npm = f"/api/v4/projects/{project.pk}/packages/npm/some-package"
    first, second = (auth_headers(AccessTokenFactory().plaintext) for _ in range(2))
    assert [client.get(generic, **first).status_code for _ in range(3)] == [404] * 3
    limited = client.get(npm, **first)
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 86400
    assert "error" in limited.json()  # npm's own error shape
    assert client.get(generic, **second).status_code == 404  # another credential has its own count
    assert [client.get(generic, REMOTE_ADDR="10.0.0.7").status_code for _ in range(3)] == [404, 404, 429]
    assert client.get(generic, REMOTE_ADDR="10.0.0.8").status_code == 404  # another address too


@pytest.mark.client
@pytest.mark.django_db(transaction=True)
def test_workers_without_redis_share_one_failure_count(blob_dir, spool_dir, tmp_path):
    """Embedded mode (no Redis): two workers count failures together, not 2 x the limit."""
    import subprocess

    from tests.conftest import start_live_server, stop_live_server

    project = ProjectFactory(visibility="public")
    server = start_live_server(
        blob_dir,
        spool_dir,
        tmp_path,
        workers=2,
        PACKHOUSE_REDIS_URL="",
        PACKHOUSE_VAR_DIR=str(tmp_path / "var"),
        PACKHOUSE_AUTH_FAILURE_LIMIT="5",
        # Counts are per fixed window; a day-long one keeps a boundary out of these 16 requests.
        PACKHOUSE_AUTH_FAILURE_WINDOW="86400",
    )
    try:
        url = server.api(f"projects/{project.pk}/packages/generic/p/1/f")
        statuses = [
            subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "PRIVATE-TOKEN: glpat-guessing", url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for _ in range(16)
        ]
    finally:
        stop_live_server(server)
    assert statuses.count("401") == 5, statuses
    assert statuses[5:] == ["429"] * 11
