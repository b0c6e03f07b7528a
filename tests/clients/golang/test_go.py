"""Debian's `go` (1.19) against a live gunicorn over the GOPROXY protocol: module zips uploaded as
Gitea takes them (`PUT …/packages/go/upload`, with every kind of token), then `go mod download`
and `go build` of a program that imports the module, from the project and from the group proxy,
with `.netrc` credentials; case-encoded module paths; and the refusals.

Each run has its own HOME (with its .netrc), GOPATH, module and build caches; GONOSUMDB keeps the
private module away from the checksum database (nothing here reaches the network). The go
command sends `.netrc` credentials only over https, so the server here serves https with a
certificate made for the test, which SSL_CERT_FILE makes go trust.
"""

import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageVersion
from tests.conftest import start_live_server, stop_live_server
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    credential,
)
from tests.formats.golang.modules import module_zip

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
MODULE = "example.com/acme/greet"


@pytest.fixture(scope="session")
def go():
    """Install Debian's go when missing."""
    if not shutil.which("go"):
        result = subprocess.run(
            ["sh", str(ROOT / "scripts/install-go.sh")], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"scripts/install-go.sh failed:\n{result.stdout}\n{result.stderr}")
    return shutil.which("go")


@pytest.fixture(scope="module")
def tls_registry(django_db_setup, django_db_blocker, blob_dir, spool_dir, tmp_path_factory):
    """A live server on https, with a self-signed certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = start_live_server(blob_dir, spool_dir, directory, tls=(cert, key))
    server.certificate = cert
    yield server
    stop_live_server(server)


class Go:
    def __init__(self, tmp_path, registry, binary):
        self.tmp_path = tmp_path
        self.registry = registry
        self.binary = binary
        self.count = 0

    def upload(self, base, headers, data):
        """`PUT <base>/packages/go/upload`; (status, body)."""
        request = urllib.request.Request(self.registry.api(f"{base}/packages/go/upload"), data=data, method="PUT")
        for key, value in headers.items():
            request.add_header(key, value)
        context = ssl.create_default_context(cafile=str(self.registry.certificate))
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def env(self, base, login=None, password=None):
        self.count += 1
        home = self.tmp_path / f"home-{self.count}"
        home.mkdir()
        if login is not None:
            (home / ".netrc").write_text(f"machine 127.0.0.1 login {login} password {password}\n")
            (home / ".netrc").chmod(0o600)
        keep = ("PATH", "LANG", "TMPDIR")
        return {
            **{key: os.environ[key] for key in keep if key in os.environ},
            "HOME": str(home),
            "GOPATH": str(home / "go"),
            "GOMODCACHE": str(home / "modcache"),
            "GOCACHE": str(home / "gocache"),
            "GOPROXY": self.registry.api(f"{base}/packages/go"),
            "GONOSUMDB": "example.com",
            "GOFLAGS": "-mod=mod -modcacherw",
            "CGO_ENABLED": "0",
            "SSL_CERT_FILE": str(self.registry.certificate),
        }

    def program(self, module=MODULE, requirement="v1.0.0"):
        self.count += 1
        directory = self.tmp_path / f"app-{self.count}"
        directory.mkdir()
        package = module.rsplit("/", 1)[-1].lower()
        (directory / "go.mod").write_text(f"module example.com/app\n\ngo 1.19\n\nrequire {module} {requirement}\n")
        (directory / "main.go").write_text(
            f'package main\n\nimport (\n\t"fmt"\n\n\t"{module}"\n)\n\nfunc main() {{ fmt.Print({package}.Hello()) }}\n'
        )
        return directory

    def run(self, env, cwd, *args, check=True):
        result = subprocess.run(
            [self.binary, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"go {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result.returncode, output

    def build_and_run(self, env, app):
        """`go mod download` and `go build`, then the program's output."""
        self.run(env, app, "mod", "download", "all")
        self.run(env, app, "build", "-o", "app", ".")
        return subprocess.run([str(app / "app")], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def gocmd(tmp_path, tls_registry, go):
    return Go(tmp_path, tls_registry, go)


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="gomods")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


@pytest.mark.parametrize("kind", ["personal", "project", "group", "deploy", "job"])
def test_upload_with_each_token_then_go_build(gocmd, project, developer, kind):
    login, token = credential(kind, project, developer)
    base = f"projects/{project.pk}"
    status, body = gocmd.upload(base, {"Authorization": f"Bearer {token}"}, module_zip(greeting=f"hello {kind}"))
    assert status == 201, body
    assert PackageVersion.objects.get().created_via == kind

    env = gocmd.env(base, login, token)
    app = gocmd.program()
    assert gocmd.build_and_run(env, app) == f"hello {kind}"
    assert f"{MODULE} v1.0.0 h1:" in (app / "go.sum").read_text()


def test_group_proxy_latest_versions_and_case_encoding(gocmd, group, project, developer):
    other = ProjectFactory(group=GroupFactory(path="tools", parent=group), path="more")
    MembershipFactory(user=developer, project=other, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=developer).plaintext
    auth = {"Authorization": f"Bearer {token}"}
    assert gocmd.upload(f"projects/{project.pk}", auth, module_zip(version="v1.0.0", greeting="one"))[0] == 201
    assert gocmd.upload(f"projects/{other.pk}", auth, module_zip(version="v1.1.0", greeting="two"))[0] == 201
    assert gocmd.upload(f"projects/{other.pk}", auth, module_zip(version="v1.2.0-rc.1", greeting="rc"))[0] == 201
    mixed = "example.com/Acme/Shout"
    assert gocmd.upload(f"projects/{project.pk}", auth, module_zip(mixed, greeting="SHOUT"))[0] == 201

    env = gocmd.env(f"groups/{group.pk}/-", "dev", token)
    app = gocmd.program(requirement="v1.0.0")
    _, output = gocmd.run(env, app, "list", "-m", "-versions", MODULE)
    assert output.strip() == f"{MODULE} v1.0.0 v1.1.0 v1.2.0-rc.1"
    gocmd.run(env, app, "get", f"{MODULE}@latest")  # the highest release, not the pre-release
    assert f"{MODULE} v1.1.0" in (app / "go.mod").read_text()
    assert gocmd.build_and_run(env, app) == "two"

    shout = gocmd.program(mixed)
    assert gocmd.build_and_run(env, shout) == "SHOUT"  # fetched as example.com/!acme/!shout


def test_refusals(gocmd, project, developer):
    base = f"projects/{project.pk}"
    assert gocmd.upload(base, {"Authorization": "Bearer glpat-not-a-token"}, module_zip())[0] == 401
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"])
    assert gocmd.upload(base, {"Authorization": f"Bearer {read_only.plaintext}"}, module_zip())[0] == 403
    token = AccessTokenFactory(user=developer).plaintext
    auth = {"Authorization": f"Bearer {token}"}
    status, body = gocmd.upload(base, auth, module_zip(go_mod="module example.com/other\n"))
    assert status == 400 and "go.mod declares module" in body
    assert not PackageVersion.objects.exists()
    assert gocmd.upload(base, auth, module_zip())[0] == 201
    status, body = gocmd.upload(base, auth, module_zip(greeting="changed"))
    assert status == 409, body

    code, output = gocmd.run(gocmd.env(base), gocmd.program(), "mod", "download", "all", check=False)
    assert code != 0 and "401" in output, output  # no .netrc: a private project
    code, output = gocmd.run(
        gocmd.env(base, "dev", "glpat-wrong"), gocmd.program(), "mod", "download", "all", check=False
    )
    assert code != 0 and "401" in output, output
    code, output = gocmd.run(
        gocmd.env(base, read_only.username, read_only.plaintext), gocmd.program(), "mod", "download", "all"
    )
    assert code == 0  # a read-only deploy token pulls
    project.visibility = "public"
    project.save()
    assert gocmd.build_and_run(gocmd.env(base), gocmd.program()) == "hello"
