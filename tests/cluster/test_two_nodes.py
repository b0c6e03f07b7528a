"""Two nodes, one state (tests/cluster/conftest.py: scripts/cluster.py's topology behind nginx).

Writes through one node are seen at once by reads on either: the real clients publish and
install through nginx (round-robin, so their reads land on both nodes); a revocation, a finished
job and a publish on node A change what node B answers on its very next request although B had
remembered the credential and the documents (per-process caches at their defaults). A node
killed in the middle of an upload leaves nothing behind once swept, and nginx keeps serving
from the other node: a read loop running through the kill sees no error.
"""

import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest

from accounts.roles import AccessLevel
from registry import tasks
from registry.models import Blob, PackageFile, PackageVersion
from tests.clients.maven.test_mvn import deploy, resolve
from tests.clients.npm.test_npm_cli import INDEX_JS, NAME, Npm, installed
from tests.clients.nuget.test_nuget_exe import Client
from tests.clients.pypi.test_pip_twine import MODULE, index_url, pip_install, twine
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.payloads import npm_document, twine_form

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]
MiB = 1024 * 1024


def http(method, url, headers=None, data=None):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="tools")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


def served(node, pattern):
    """How many requests whose request line matches `pattern` this node answered."""
    return len(re.findall(pattern, node.log()))


def test_npm_publish_then_install_through_the_balancer(cluster, nodes, tmp_path, group, project, developer):
    npm = Npm(tmp_path, cluster)
    token = AccessTokenFactory(user=developer).plaintext
    npm.run(npm.package("1.0.0", f"projects/{project.pk}", token), "publish")
    for base in (f"projects/{project.pk}", f"groups/{group.pk}/-", f"projects/{project.pk}"):
        app = npm.consumer(base, token, {NAME: "1.0.0"})
        npm.run(app, "install")
        assert installed(app) == ("1.0.0", INDEX_JS)
    assert all(served(node, r'"GET /api/v4/\S+/packages/npm/@acme') for node in nodes)


def test_twine_upload_then_pip_install_through_the_balancer(cluster, nodes, tmp_path, project, developer, dists):
    token = AccessTokenFactory(user=developer).plaintext
    code, output = twine(cluster, project, "__token__", token, dists)
    assert code == 0, output
    for attempt in range(3):
        code, output = pip_install(index_url(cluster, f"projects/{project.pk}", token), tmp_path / f"pip-{attempt}")
        assert code == 0, output
        assert (tmp_path / f"pip-{attempt}" / f"{MODULE}.py").read_text() == 'VALUE = "tiny"\n'
    assert all(served(node, r'"GET /api/v4/projects/\d+/packages/pypi/simple') for node in nodes)


def test_mvn_deploy_then_resolve_through_the_balancer(cluster, nodes, maven, tmp_path, group, project, developer):
    token = AccessTokenFactory(user=developer).plaintext
    credential = ("header", "Private-Token", token)
    project_url = cluster.api(f"projects/{project.pk}/packages/maven")
    code, output, jar = deploy(tmp_path, maven, project_url, credential, "1.0", "cluster")
    assert code == 0, output
    for label, url in (("project", project_url), ("group", cluster.api(f"groups/{group.pk}/-/packages/maven"))):
        code, output, resolved = resolve(tmp_path, maven, url, credential, "com.example:my-app:1.0", label)
        assert code == 0, output
        assert resolved.read_bytes() == jar
    assert all(served(node, r'"GET /api/v4/\S+/packages/maven/com/example') for node in nodes)


def test_nuget_push_then_install_through_the_balancer(cluster, nodes, nuget_exe, tmp_path, project, developer):
    token = AccessTokenFactory(user=developer).plaintext
    client = Client(nuget_exe, tmp_path)
    client.add_source("cluster", cluster.api(f"projects/{project.pk}/packages/nuget/index.json"), "dev", token)
    client.push(client.pack("Acme.Clustered", "1.0.0"), "cluster")
    for attempt in range(2):
        reader = Client(nuget_exe, tmp_path / f"reader-{attempt}")
        reader.add_source("cluster", cluster.api(f"projects/{project.pk}/packages/nuget/index.json"), "dev", token)
        _, _, readme = reader.install("Acme.Clustered", "1.0.0", "cluster")
        assert readme.read_text() == "hello from packhouse\n"
    assert all(served(node, r'"GET /api/v4/projects/\d+/packages/nuget/') for node in nodes)


def test_a_token_revoked_through_node_a_is_refused_by_node_b(nodes, project, developer):
    a, b = nodes
    token = AccessTokenFactory(user=developer).plaintext
    packument = b.api(f"projects/{project.pk}/packages/npm/{NAME.replace('/', '%2f')}")
    headers = {"PRIVATE-TOKEN": token}
    for _ in range(2):  # B authenticates the token, then answers from what it remembers
        assert http("GET", packument, headers)[0] == 404
    assert http("DELETE", a.api("personal_access_tokens/self"), headers)[0] == 204
    assert http("GET", packument, headers)[0] == 401


def test_a_job_that_ends_on_node_a_loses_its_token_on_node_b(nodes, project, developer):
    a, b = nodes
    token = AccessTokenFactory(user=developer).plaintext
    status, body = http("POST", a.api(f"projects/{project.pk}/jobs"), {"PRIVATE-TOKEN": token})
    assert status == 201, body
    job = json.loads(body)
    job_headers = {"JOB-TOKEN": job["token"]}
    generic = f"projects/{project.pk}/packages/generic/tool/1.0/tool.bin"
    assert http("PUT", b.api(generic), job_headers, b"built in CI")[0] == 201
    for _ in range(2):
        assert http("GET", b.api(generic), job_headers)[0] in (200, 302)
    assert http("POST", a.api(f"projects/{project.pk}/jobs/{job['id']}/finish"), job_headers)[0] == 200
    assert http("GET", b.api(generic), job_headers)[0] == 401


def test_a_publish_on_node_a_changes_the_documents_node_b_serves(nodes, project, developer):
    a, b = nodes
    token = AccessTokenFactory(user=developer).plaintext
    npm_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    npm_path = f"projects/{project.pk}/packages/npm/@acme%2fwidget"
    pypi_headers = {"PRIVATE-TOKEN": token}
    simple = f"projects/{project.pk}/packages/pypi/simple/widget"

    body, content_type = twine_form("widget", "1.0")
    assert (
        http(
            "POST", a.api(f"projects/{project.pk}/packages/pypi"), {**pypi_headers, "Content-Type": content_type}, body
        )[0]
        == 201
    )
    assert http("PUT", a.api(npm_path), npm_headers, npm_document("@acme/widget", "1.0.0"))[0] in (200, 201)
    for _ in range(3):  # B builds both documents, then replays what it remembers
        status, packument = http("GET", b.api(npm_path), npm_headers)
        assert status == 200 and list(json.loads(packument)["versions"]) == ["1.0.0"]
        status, page = http("GET", b.api(simple), pypi_headers)
        assert status == 200 and b"widget-1.0-" in page and b"widget-1.1-" not in page

    body, content_type = twine_form("widget", "1.1")
    assert (
        http(
            "POST", a.api(f"projects/{project.pk}/packages/pypi"), {**pypi_headers, "Content-Type": content_type}, body
        )[0]
        == 201
    )
    assert http("PUT", a.api(npm_path), npm_headers, npm_document("@acme/widget", "1.1.0"))[0] in (200, 201)
    status, packument = http("GET", b.api(npm_path), npm_headers)
    assert status == 200
    assert sorted(json.loads(packument)["versions"]) == ["1.0.0", "1.1.0"]
    assert json.loads(packument)["dist-tags"]["latest"] == "1.1.0"
    status, page = http("GET", b.api(simple), pypi_headers)
    assert status == 200 and b"widget-1.1-" in page


def _random_file(path, size):
    block = bytes(range(256)) * 4096  # 1 MiB
    with path.open("wb") as handle:
        for index in range(size // MiB):
            handle.write(index.to_bytes(4, "big") + block[4:])


def test_a_node_killed_mid_upload_leaves_nothing_and_the_other_keeps_serving(
    cluster, nodes, project, developer, tmp_path, settings
):
    from packhouse.settings import _blob_storage

    a, _ = nodes
    token = AccessTokenFactory(user=developer).plaintext
    headers = {"PRIVATE-TOKEN": token}
    small = f"projects/{project.pk}/packages/generic/tool/1.0/small.bin"
    assert http("PUT", cluster.api(small), headers, b"always there")[0] == 201

    errors, reads, done = [], [], threading.Event()

    def read_loop():  # through nginx, round-robin over both nodes, for as long as the test says
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            try:
                status, _ = http("GET", cluster.api(small), headers)
            except OSError as exc:
                status = repr(exc)
            reads.append(status)
            if status != 302:
                errors.append(status)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        big = tmp_path / "big.bin"
        _random_file(big, 200 * MiB)
        upload = subprocess.Popen(
            ["curl", "--silent", "--output", "/dev/null", "--write-out", "%{http_code}"]
            + ["--header", f"PRIVATE-TOKEN: {token}", "--upload-file", str(big)]
            + [a.api(f"projects/{project.pk}/packages/generic/big/1.0/big.bin")],
            stdout=subprocess.PIPE,
            text=True,
        )
        store = cluster.bucket.server.client()
        # Node A is sending the upload's parts to the store: kill it (master and workers) now.
        while not store.list_multipart_uploads(Bucket=cluster.bucket.name).get("Uploads"):
            assert upload.poll() is None, "the upload ended before its multipart upload was seen"
            time.sleep(0.02)
        a.stop(sig=signal.SIGKILL)
        assert upload.communicate(timeout=60)[0] != "201"
        reads_at_kill = len(reads)
        while len(reads) < reads_at_kill + 50:  # the loop goes on through the kill and after it
            assert reader.is_alive()
            time.sleep(0.05)
    finally:
        done.set()
        reader.join(timeout=60)
    assert errors == [], errors
    assert len(reads) >= 50

    assert not PackageFile.objects.filter(version__package__name="big").exists()
    assert Blob.objects.count() == 1  # the small file's
    settings.STORAGES = {**settings.STORAGES, "packages": _blob_storage(cluster.bucket.storage_url)}
    tasks.collect_orphan_objects(grace=timedelta(0))
    assert cluster.bucket.keys() == [Blob.objects.get().key]
    assert not store.list_multipart_uploads(Bucket=cluster.bucket.name).get("Uploads")
    assert PackageVersion.objects.filter(package__name="tool").exists()
