"""Issue 23: what `pip install` asks per package, counted in queries (never timed).

pip asks three things per package: the simple page, the wheel's core metadata (`<file>.metadata`,
PEP 658) and the wheel. All three go through the WSGI application gunicorn runs. The core metadata
is one query the first time a worker is asked (it was three: a lookup of a file named
`….whl.metadata` that cannot exist, the wheel, then its metadata row) and none after that, replayed
as the simple pages are; the wheel's lookup is that same lookup, remembered under its project's
epochs, so the wheel after its metadata, and any repeat, costs no query. Neither outlives a change: a deleted version
is 404 at once, a revoked token 401."""

import hashlib
import re

import pytest
from django.core import signals
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.roles import AccessLevel
from registry import download_counts
from registry.models import PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.helpers import auth_headers
from tests.payloads import twine_form

pytestmark = pytest.mark.django_db

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


def wsgi_get(path, **headers):
    """GET through packhouse.wsgi.application, as gunicorn calls it: (status, headers, body, queries)."""
    from packhouse.wsgi import application

    environ = RequestFactory().get(path, **headers).environ
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started.update(status=status, headers=dict(response_headers))

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with CaptureQueriesContext(connection) as queries:
            result = application(environ, start_response)
            body = b"".join(result)
            if hasattr(result, "close"):
                result.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return int(started["status"].split()[0]), started["headers"], body, len(queries)


@pytest.fixture
def world(client):
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="web", visibility="private")
    token = AccessTokenFactory(user=member(project, AccessLevel.MAINTAINER))
    headers = auth_headers(token.plaintext, "basic:__token__")
    body, content_type = twine_form("bench-lib", "1.0.0")
    upload = f"/api/v4/projects/{project.pk}/packages/pypi"
    response = client.post(upload, data=body, content_type=content_type, **headers)
    assert response.status_code == 201, response.content
    wsgi_get(f"/api/v4/projects/{project.pk}/packages/pypi/simple/nothing/", **headers)  # the token's first use
    return group, project, token, headers


def file_url(project, headers):
    status, _, page, _ = wsgi_get(
        f"/api/v4/projects/{project.pk}/packages/pypi/simple/bench-lib/", HTTP_ACCEPT="text/html", **headers
    )
    assert status == 200
    return re.search(r'href="http://testserver([^"#]+)', page.decode()).group(1)


def test_core_metadata_is_one_query_then_replayed(world):
    _, project, _, headers = world
    url = file_url(project, headers) + ".metadata"

    first = wsgi_get(url, **headers)
    second = wsgi_get(url, **headers)

    assert first[0] == second[0] == 200
    assert first[3] == 1
    assert second[3] == 0
    assert first[2] == second[2]
    assert b"Name: bench-lib" in first[2]
    assert second[1]["ETag"] == first[1]["ETag"]
    assert second[1]["Content-Length"] == str(len(first[2]))


def test_a_repeated_wheel_download_looks_nothing_up_and_is_counted(world):
    _, project, _, headers = world
    url = file_url(project, headers)
    sha256 = url.rsplit("/", 2)[1]

    first = wsgi_get(url, **headers)
    second = wsgi_get(url, **headers)

    assert first[0] == second[0] == 200
    assert hashlib.sha256(first[2]).hexdigest() == hashlib.sha256(second[2]).hexdigest() == sha256
    assert first[3] >= 1
    assert second[3] == 0
    download_counts.flush()
    assert PackageVersion.objects.get(package__name="bench-lib").download_count == 2


def test_the_wheel_after_its_metadata_looks_nothing_up(world):
    """pip's order: the `.metadata`, then the wheel; one lookup serves both."""
    _, project, _, headers = world
    url = file_url(project, headers)

    assert wsgi_get(url + ".metadata", **headers)[3] == 1
    status, _, body, queries = wsgi_get(url, **headers)

    assert status == 200
    assert queries == 0
    assert hashlib.sha256(body).hexdigest() == url.rsplit("/", 2)[1]


def test_group_routes_remember_too(world):
    group, project, _, headers = world
    path = file_url(project, headers).split("/packages/pypi/files/", 1)[1]
    url = f"/api/v4/groups/{group.pk}/-/packages/pypi/files/{path}"

    assert [wsgi_get(url, **headers)[0] for _ in range(2)] == [200, 200]
    assert wsgi_get(url, **headers)[3] == 0
    assert wsgi_get(url + ".metadata", **headers)[0] == 200
    assert wsgi_get(url + ".metadata", **headers)[3] == 0


def test_nothing_remembered_outlives_a_deletion_or_a_revocation(client, world):
    _, project, token, headers = world
    url = file_url(project, headers)
    for _ in range(2):
        assert wsgi_get(url, **headers)[0] == 200
        assert wsgi_get(url + ".metadata", **headers)[0] == 200

    version = PackageVersion.objects.get(package__name="bench-lib")
    package_url = f"/api/v4/projects/{project.pk}/packages/{version.pk}"  # GitLab's package: a version
    response = client.delete(package_url, **auth_headers(token.plaintext, "private"))
    assert response.status_code == 204, response.content
    assert wsgi_get(url, **headers)[0] == 404
    assert wsgi_get(url + ".metadata", **headers)[0] == 404


def test_a_revoked_token_is_refused_at_once(world):
    _, project, token, headers = world
    url = file_url(project, headers)
    for _ in range(2):
        assert wsgi_get(url + ".metadata", **headers)[0] == 200
        assert wsgi_get(url, **headers)[0] == 200

    token.revoke()
    assert wsgi_get(url + ".metadata", **headers)[0] == 401
    assert wsgi_get(url, **headers)[0] == 401


def test_a_file_name_naming_another_project_is_not_found(world):
    _, project, _, headers = world
    url = file_url(project, headers)
    sha256, file_name = url.rsplit("/", 2)[1:]
    other = url.replace(file_name, file_name.replace("bench_lib", "other_lib"))

    assert wsgi_get(other, **headers)[0] == 404
    assert wsgi_get(other + ".metadata", **headers)[0] == 404
    assert wsgi_get(url.replace(file_name, "not-a-distribution.txt"), **headers)[0] == 404
    assert sha256 in url
