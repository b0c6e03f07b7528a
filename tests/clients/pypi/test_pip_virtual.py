"""The real pip and uv installing through a PyPI virtual registry (spec §2.3, §3, §4.2, §5.4).

The remote upstream is a real server: python's http.server serving a PEP 503 simple tree (the
shape pip documents for static indexes), with hashes, requires-python, a yanked release and a
PEP 658 metadata file. The local upstream is the group's project, uploaded to with twine.
Files on another host than the index (spec §5.1 `file_hosts`): Debian's nginx serving the
index on 127.0.0.1 and the files on 127.0.0.2, logging the credentials each request carried.
"""

import base64
import hashlib
import io
import json
import sys
import urllib.error
import urllib.request
import zipfile

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry, RegistryUpstream, Upstream, VirtualRegistry
from tests.clients.pypi.test_pip_twine import VENV_BIN, client_env, run, twine
from tests.conftest import start_virtual_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.payloads import wheel
from tests.upstreams import Nginx, StaticUpstream

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def virtual_server(django_db_setup, django_db_blocker, blob_dir, spool_dir, tmp_path_factory):
    server = start_virtual_server(
        blob_dir, spool_dir, tmp_path_factory.mktemp("pypi-virtual-live"), allowed_hosts="127.0.0.1,127.0.0.2"
    )
    yield server
    stop_live_server(server)


def simple_tree(root, projects):
    """A static PEP 503 index under `root`: {name: [(file name, bytes, extra attributes)]}."""
    (root / "packages").mkdir(parents=True)
    for name, files in projects.items():
        page = root / "simple" / name
        page.mkdir(parents=True)
        anchors = []
        for file_name, content, attributes, sha256 in files:
            (root / "packages" / file_name).write_bytes(content)
            digest = sha256 or hashlib.sha256(content).hexdigest()
            anchors.append(f'<a href="../../packages/{file_name}#sha256={digest}"{attributes}>{file_name}</a><br>')
        (page / "index.html").write_text("<!DOCTYPE html><html><body>" + "\n".join(anchors) + "</body></html>")


def core_metadata(content):
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return next(archive.read(n) for n in archive.namelist() if n.endswith(".dist-info/METADATA"))


@pytest.fixture
def upstream(tmp_path):
    root = tmp_path / "index"
    public_name, public = wheel("public-pkg", "1.0", "public")
    old_name, old = wheel("public-pkg", "0.9", "yanked")
    evil_name, evil = wheel("acme-tool", "99.0", "evil")
    bad_name, bad = wheel("bad-pkg", "1.0", "tampered")
    metadata = core_metadata(public)
    metadata_hash = hashlib.sha256(metadata).hexdigest()
    simple_tree(
        root,
        {
            "public-pkg": [
                (old_name, old, ' data-yanked="broken"', None),
                (
                    public_name,
                    public,
                    f' data-requires-python="&gt;=3.8" data-core-metadata="sha256={metadata_hash}"',
                    None,
                ),
            ],
            "acme-tool": [(evil_name, evil, "", None)],
            "bad-pkg": [(bad_name, bad, "", "0" * 64)],
        },
    )
    (root / "packages" / f"{public_name}.metadata").write_bytes(metadata)
    server = StaticUpstream(root, log_path=tmp_path / "index.log").start()
    server.public = (public_name, public)
    yield server
    server.stop()


def install(tool, index, target, *names):
    if tool == "pip":
        args = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target", str(target)]
    else:
        args = [str(VENV_BIN / "uv"), "pip", "install", "--no-cache", "--no-deps", "--python", sys.executable]
        args += ["--target", str(target)]
    return run([*args, "--index-url", index, *names], client_env())


def test_pip_and_uv_install_through_a_virtual_registry(virtual_server, upstream, tmp_path):
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="tools")
    user = UserFactory(username="dev")
    MembershipFactory(user=user, group=group, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=user).plaintext
    local_name, local = wheel("acme-tool", "1.0", "ours")
    (tmp_path / local_name).write_bytes(local)
    code, output = twine(virtual_server, project, "__token__", token, [tmp_path / local_name])
    assert code == 0, output

    registry = VirtualRegistry.objects.create(group=group, format="pypi", name="python")
    remote = Upstream.objects.create(
        group=group, format="pypi", kind="remote", name="index", url=f"{upstream.url}/simple"
    )
    local_upstream = Upstream.objects.create(
        group=group, format="pypi", kind="local", name="ours", local_project=project
    )
    RegistryUpstream.objects.create(registry=registry, upstream=remote, position=1)
    RegistryUpstream.objects.create(registry=registry, upstream=local_upstream, position=2)
    from registry.virtual import claims

    claims.backfill(local_upstream)  # as the management API does when it creates a local upstream
    simple = virtual_server.api(f"virtual_registries/packages/pypi/{registry.pk}/simple")
    index = simple.replace("http://", f"http://__token__:{token}@")

    for tool in ("pip", "uv"):
        target = tmp_path / f"{tool}-site"
        code, output = install(tool, index, target, "public-pkg", "acme-tool")
        assert code == 0, output
        assert (target / "public_pkg" / "__init__.py").read_text() == "VALUE = 1  # public\n"  # not the yanked 0.9
        assert (target / "acme_tool" / "__init__.py").read_text() == "VALUE = 1  # ours\n"  # never 99.0
    public_name, public = upstream.public
    entry = CacheEntry.objects.get(relative_path__endswith=f"/{public_name}")
    assert entry.verified and entry.blob.sha256 == hashlib.sha256(public).hexdigest()
    assert not any("acme-tool" in line for line in upstream.requests())
    # pip read the PEP 658 metadata file before choosing the wheel; it was checked and cached too.
    assert CacheEntry.objects.get(relative_path__endswith=f"/{public_name}.metadata").verified

    # A file whose bytes do not match the hash its page declares: refused, nothing cached.
    code, output = install("pip", index, tmp_path / "bad", "bad-pkg")
    assert code != 0 and "502" in output, output
    assert not CacheEntry.objects.filter(relative_path__contains="bad_pkg").exists()

    # The upstream goes down: a fresh install works from Packhouse's cache.
    upstream.stop()
    for tool in ("pip", "uv"):
        target = tmp_path / f"{tool}-offline"
        code, output = install(tool, index, target, "public-pkg", "acme-tool")
        assert code == 0, output
        assert (target / "public_pkg" / "__init__.py").read_text() == "VALUE = 1  # public\n"
    code, output = install("pip", index, tmp_path / "never", "never-cached")
    assert code != 0, output
    # pip keeps the status to itself ("no versions"): the page itself is a 503, never a 404.
    request = urllib.request.Request(f"{simple}/never-cached/", headers={"Private-Token": token})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 503


def api(server, token, method, path, body=None):
    request = urllib.request.Request(
        server.api(path),
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Private-Token": token, "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def maintainer(group):
    user = UserFactory()
    MembershipFactory(user=user, group=group, access_level=AccessLevel.MAINTAINER)
    return AccessTokenFactory(user=user).plaintext


def test_files_on_another_host_only_from_file_hosts_and_without_the_credentials(virtual_server, tmp_path):
    """pypi.org lists its files on files.pythonhosted.org: here the page is on 127.0.0.1 and the
    wheel on 127.0.0.2. Refused (502, nothing fetched from the file host, nothing cached) until
    the host is in the upstream's `file_hosts`; then pip and uv install it, and the upstream's
    credentials went to the index only."""
    wheel_name, content = wheel("hosted-pkg", "1.0", "hosted")
    (tmp_path / "files" / "packages").mkdir(parents=True)
    (tmp_path / "files" / "packages" / wheel_name).write_bytes(content)
    page = tmp_path / "index" / "simple" / "hosted-pkg"
    page.mkdir(parents=True)
    servers = Nginx(
        tmp_path / "nginx", {"index": ("127.0.0.1", tmp_path / "index"), "files": ("127.0.0.2", tmp_path / "files")}
    )
    digest = hashlib.sha256(content).hexdigest()
    link = f"{servers.url('files')}/packages/{wheel_name}#sha256={digest}"
    (page / "index.html").write_text(f'<!DOCTYPE html><html><body><a href="{link}">{wheel_name}</a></body></html>')
    servers.start()
    try:
        group = GroupFactory(path="acme")
        token = maintainer(group)
        registry = api(
            virtual_server,
            token,
            "POST",
            f"groups/{group.pk}/-/virtual_registries/packages/pypi/registries",
            {"name": "py"},
        )
        upstream = api(
            virtual_server,
            token,
            "POST",
            f"virtual_registries/packages/pypi/registries/{registry['id']}/upstreams",
            {"url": f"{servers.url('index')}/simple", "username": "mirror", "password": "mirror-secret"},
        )
        assert upstream["file_hosts"] == []
        simple = virtual_server.api(f"virtual_registries/packages/pypi/{registry['id']}/simple")
        index = simple.replace("http://", f"http://__token__:{token}@")

        code, output = install("pip", index, tmp_path / "refused", "hosted-pkg")
        assert code != 0 and "502" in output, output
        assert servers.requests("files") == []
        assert not CacheEntry.objects.filter(relative_path__endswith=wheel_name).exists()

        files_host = servers.url("files").removeprefix("http://")
        changed = api(
            virtual_server,
            token,
            "PATCH",
            f"virtual_registries/packages/pypi/upstreams/{upstream['id']}",
            {"file_hosts": [files_host.upper()]},
        )
        assert changed["file_hosts"] == [files_host]
        for tool in ("pip", "uv"):
            target = tmp_path / f"{tool}-site"
            code, output = install(tool, index, target, "hosted-pkg")
            assert code == 0, output
            assert (target / "hosted_pkg" / "__init__.py").read_text() == "VALUE = 1  # hosted\n"
        entry = CacheEntry.objects.get(relative_path__endswith=wheel_name)
        assert entry.verified and entry.origin_url == link.split("#")[0]
        basic = "Basic " + base64.b64encode(b"mirror:mirror-secret").decode()
        index_requests = servers.requests("index")
        assert index_requests and all(auth == basic for _, auth in index_requests)
        file_requests = servers.requests("files")
        assert file_requests == [(f"GET /packages/{wheel_name} HTTP/1.1", "-")]  # fetched once, no credentials
    finally:
        servers.stop()


def test_local_wheels_core_metadata_is_what_pip_and_uv_resolve_with(virtual_server, tmp_path):
    """PEP 658/714 for a local upstream: the page advertises each wheel's core metadata
    (`data-core-metadata` and `data-dist-info-metadata`, JSON `core-metadata`), and pip's and
    uv's resolution reads `<wheel>.metadata` instead of downloading the wheel."""
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="tools")
    token = maintainer(group)
    local_name, local = wheel("acme-lib", "2.0", "ours")
    (tmp_path / local_name).write_bytes(local)
    code, output = twine(virtual_server, project, "__token__", token, [tmp_path / local_name])
    assert code == 0, output
    registry = api(
        virtual_server,
        token,
        "POST",
        f"groups/{group.pk}/-/virtual_registries/packages/pypi/registries",
        {"name": "py"},
    )
    api(
        virtual_server,
        token,
        "POST",
        f"virtual_registries/packages/pypi/registries/{registry['id']}/local/upstreams",
        {"name": "ours", "local_project_id": project.pk},
    )
    simple = virtual_server.api(f"virtual_registries/packages/pypi/{registry['id']}/simple")
    metadata = core_metadata(local)
    digest = hashlib.sha256(metadata).hexdigest()

    request = urllib.request.Request(f"{simple}/acme-lib/", headers={"Private-Token": token})
    html = urllib.request.urlopen(request, timeout=30).read().decode()
    assert f'data-dist-info-metadata="sha256={digest}" data-core-metadata="sha256={digest}"' in html
    request.add_header("Accept", "application/vnd.pypi.simple.v1+json")
    document = json.loads(urllib.request.urlopen(request, timeout=30).read())
    (entry,) = document["files"]
    assert entry["core-metadata"] == entry["dist-info-metadata"] == {"sha256": digest}
    request = urllib.request.Request(entry["url"] + ".metadata", headers={"Private-Token": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read() == metadata and response.headers["Content-Type"] == "text/plain"

    index = simple.replace("http://", f"http://__token__:{token}@")
    env = client_env()
    code, output = run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-cache-dir",
            "--no-deps",
            "--report",
            "-",
            "--index-url",
            index,
            "acme-lib",
        ],
        env,
    )
    assert code == 0 and '"version": "2.0"' in output, output
    requirements = tmp_path / "requirements.in"
    requirements.write_text("acme-lib\n")
    code, output = run(
        [
            str(VENV_BIN / "uv"),
            "pip",
            "compile",
            "--no-cache",
            "--python",
            sys.executable,
            "--index-url",
            index,
            str(requirements),
        ],
        env,
    )
    assert code == 0 and "acme-lib==2.0" in output, output
    log = [line for line in virtual_server.log().splitlines() if f"/{local_name}" in line]
    pip_reads = [line.split('"')[1].split()[1].rsplit("/", 1)[-1] for line in log if '"pip/' in line]
    assert pip_reads[0] == f"{local_name}.metadata", log  # resolved from the metadata, before any wheel
    uv_reads = [line for line in log if '"uv/' in line]
    assert uv_reads and all(f"/{local_name}.metadata HTTP" in line and '" 200 ' in line for line in uv_reads), log
