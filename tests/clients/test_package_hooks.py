"""Package webhooks with the real clients: a live server (PACKHOUSE_WEBHOOK_ALLOW_PRIVATE, so it
may reach the test's listener on 127.0.0.1) and a real HTTP listener. npm publish, twine upload,
mvn deploy and NuGet.exe push each cause exactly one `published` delivery, with the hook's token
and a body naming the package, its files (sha256, size) and the project."""

import hashlib
import json
import urllib.request

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageFile
from tests.clients.maven.test_mvn import deploy, maven  # noqa: F401
from tests.clients.npm.test_npm_cli import Npm
from tests.clients.nuget.test_nuget_exe import Client, nuget_exe, project_source  # noqa: F401
from tests.clients.pypi.test_pip_twine import dists, twine  # noqa: F401
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.hook_listener import Listener

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

HOOK_TOKEN = "hook-secret-for-tests"


@pytest.fixture(scope="module")
def hook_registry(django_db_setup, django_db_blocker, blob_dir, spool_dir, tmp_path_factory):
    server = start_live_server(
        blob_dir, spool_dir, tmp_path_factory.mktemp("hooks"), PACKHOUSE_WEBHOOK_ALLOW_PRIVATE="true"
    )
    yield server
    stop_live_server(server)


@pytest.fixture
def listener():
    with Listener() as running:
        yield running


class World:
    def __init__(self, registry, listener, group_path):
        self.project = ProjectFactory(group=GroupFactory(path=group_path), path="hooked")
        self.user = UserFactory(username=f"{group_path}-dev")
        MembershipFactory(user=self.user, project=self.project, access_level=AccessLevel.MAINTAINER)
        self.token = AccessTokenFactory(user=self.user).plaintext
        request = urllib.request.Request(
            registry.api(f"projects/{self.project.pk}/hooks"),
            data=json.dumps({"url": listener.url, "token": HOOK_TOKEN, "package_events": True}).encode(),
            headers={"PRIVATE-TOKEN": self.token, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the test's own server
            assert response.status == 201
            assert HOOK_TOKEN not in response.read().decode()


def the_delivery(listener, world, name, package_type):
    """The one request the listener got: headers, token, body."""
    assert len(listener.requests) == 1, [r["body"] for r in listener.requests]
    (request,) = listener.requests
    assert request["headers"]["X-Gitlab-Event"] == "Package Hook"
    assert request["headers"]["X-Gitlab-Token"] == HOOK_TOKEN
    body = json.loads(request["body"])
    assert (body["object_kind"], body["event_type"]) == ("package", "published")
    assert (body["package"]["name"], body["package"]["package_type"]) == (name, package_type)
    assert body["project"]["path_with_namespace"] == world.project.full_path
    assert body["user"]["username"] == world.user.username
    assert world.token not in request["body"].decode()
    stored = {f.file_name: f.blob for f in PackageFile.objects.select_related("blob")}
    for entry in body["package"]["files"]:
        blob = stored[entry["file_name"]]
        assert (entry["sha256"], entry["size"]) == (blob.sha256, blob.size)
    return body


def test_npm_publish_delivers_once(hook_registry, listener, tmp_path):
    world = World(hook_registry, listener, "acme")
    npm = Npm(tmp_path, hook_registry)
    npm.run(npm.package("1.0.0", f"projects/{world.project.pk}", world.token), "publish")
    body = the_delivery(listener, world, "@acme/left-pad", "npm")
    assert body["package"]["version"] == "1.0.0"
    assert [f["file_name"] for f in body["package"]["files"]] == ["left-pad-1.0.0.tgz"]


def test_twine_upload_delivers_once(hook_registry, listener, dists):  # noqa: F811
    world = World(hook_registry, listener, "py")
    code, output = twine(hook_registry, world.project, "__token__", world.token, dists)
    assert code == 0, output
    body = the_delivery(listener, world, "Packhouse.Tiny-Demo", "pypi")  # as the built metadata spells it
    assert body["package"]["version"] == "0.1.0"
    assert body["package"]["files"][0]["file_name"] == dists[0].name  # the first file makes the version


def test_mvn_deploy_delivers_once(hook_registry, listener, maven, tmp_path):  # noqa: F811
    world = World(hook_registry, listener, "jvm")
    url = hook_registry.api(f"projects/{world.project.pk}/packages/maven")
    code, output, _ = deploy(tmp_path, maven, url, ("header", "Private-Token", world.token), "1.0", "hooked")
    assert code == 0, output
    body = the_delivery(listener, world, "com/example/my-app", "maven")
    assert body["package"]["version"] == "1.0"
    # mvn uploads the pom first: the upload that makes the version is the one announced
    pom = (tmp_path / "producer-hooked" / "pom.xml").read_bytes()
    assert body["package"]["files"] == [
        {"file_name": "my-app-1.0.pom", "sha256": hashlib.sha256(pom).hexdigest(), "size": len(pom)}
    ]


def test_nuget_exe_push_delivers_once(hook_registry, listener, nuget_exe, tmp_path):  # noqa: F811
    world = World(hook_registry, listener, "dotnet")
    client = Client(nuget_exe, tmp_path)
    client.add_source("packhouse", project_source(hook_registry, world.project), world.user.username, world.token)
    package = client.pack("Acme.Hooked", "1.0.0")
    client.push(package, "packhouse", "-ApiKey", world.token)
    body = the_delivery(listener, world, "Acme.Hooked", "nuget")
    assert body["package"]["files"] == [
        {
            "file_name": "acme.hooked.1.0.0.nupkg",
            "sha256": hashlib.sha256(package.read_bytes()).hexdigest(),
            "size": package.stat().st_size,
        }
    ]
