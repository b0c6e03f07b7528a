"""20 simultaneous publishes of the same name and version, over real HTTP to a live gunicorn:
exactly one wins, the others get the format's duplicate answer, one version and one object stay."""

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from accounts.roles import AccessLevel
from registry.models import Blob, DuplicateSetting, PackageFile, PackageVersion
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import stored_objects
from tests.payloads import npm_document, twine_form

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]
CONTENDERS = 20


def send(method, url, token, body, content_type):
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - the live test server
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def race(requests):
    barrier = Barrier(len(requests))

    def contender(request):
        barrier.wait()
        return send(*request)

    with ThreadPoolExecutor(len(requests)) as pool:
        return sorted(pool.map(contender, requests))


@pytest.fixture
def project():
    project = ProjectFactory(group=GroupFactory(path="race"), path="proj")
    DuplicateSetting.objects.create(project=project, format="generic", allowed=False)
    DuplicateSetting.objects.create(project=project, format="maven", allowed=False)
    return project


@pytest.fixture
def token(project):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return AccessTokenFactory(user=user).plaintext


def assert_one_survivor(blob_dir, file_count=1):
    assert PackageVersion.objects.count() == 1
    assert PackageFile.objects.count() == file_count
    assert Blob.objects.count() == file_count
    assert len(stored_objects(blob_dir)) == file_count


def test_generic(live_registry, project, token, blob_dir):
    url = live_registry.api(f"projects/{project.pk}/packages/generic/tool/1.0.0/tool.bin")
    statuses = race(
        [("PUT", url, token, f"contender {i}".encode(), "application/octet-stream") for i in range(CONTENDERS)]
    )
    assert statuses == [201] + [409] * (CONTENDERS - 1)
    assert_one_survivor(blob_dir)


def test_npm(live_registry, project, token, blob_dir):
    url = live_registry.api(f"projects/{project.pk}/packages/npm/@race%2fpkg")
    requests = [
        ("PUT", url, token, npm_document("@race/pkg", "1.0.0", description=f"contender {i}"), "application/json")
        for i in range(CONTENDERS)
    ]
    statuses = race(requests)
    winners = [s for s in statuses if s in (200, 201)]
    assert len(winners) == 1
    assert statuses.count(403) == CONTENDERS - 1
    assert_one_survivor(blob_dir)


def test_pypi(live_registry, project, token, blob_dir):
    url = live_registry.api(f"projects/{project.pk}/packages/pypi")
    requests = []
    for i in range(CONTENDERS):
        body, content_type = twine_form("race-pkg", "1.0.0", note=f"contender {i}")
        requests.append(("POST", url, token, body, content_type))
    statuses = race(requests)
    assert statuses == [201] + [400] * (CONTENDERS - 1)
    assert_one_survivor(blob_dir)


def test_maven(live_registry, project, token, blob_dir):
    url = live_registry.api(f"projects/{project.pk}/packages/maven/com/example/race/1.0.0/race-1.0.0.jar")
    statuses = race([("PUT", url, token, f"jar {i}".encode(), "application/java-archive") for i in range(CONTENDERS)])
    assert statuses == [200] + [409] * (CONTENDERS - 1)  # mvn expects 200 for a stored file
    assert_one_survivor(blob_dir)


def test_nuget(live_registry, project, token, blob_dir):
    from tests.formats.nuget.nupkg import multipart, nupkg

    DuplicateSetting.objects.create(project=project, format="nuget", allowed=False)
    url = live_registry.api(f"projects/{project.pk}/packages/nuget/")
    requests = []
    for i in range(CONTENDERS):
        body, content_type = multipart(nupkg("Race.Pkg", "1.0.0", description=f"contender {i}"))
        requests.append(("PUT", url, token, body, content_type))
    statuses = race(requests)
    assert statuses == [201] + [409] * (CONTENDERS - 1)
    assert_one_survivor(blob_dir)
