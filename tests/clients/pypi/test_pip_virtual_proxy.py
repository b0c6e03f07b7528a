"""PACKHOUSE_VR_OUTBOUND_PROXY (spec §5.1): pip installing through a virtual registry whose
upstream traffic goes through a real HTTP proxy (proxy.py, with Basic proxy credentials).

The upstreams are Debian's nginx: a PEP 503 index over https (a self-signed certificate the
Packhouse process trusts through SSL_CERT_FILE), reached with CONNECT to its address, and one
over plain http, reached with an absolute-form request. With the proxy stopped nothing gets
through another way: an uncached page is 503.
"""

import hashlib
import json
import sys
import urllib.error
import urllib.request

import pytest

from accounts.roles import AccessLevel
from registry.models import CacheEntry
from tests.clients.pypi.test_pip_twine import client_env, run
from tests.conftest import start_live_server, stop_live_server
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, UserFactory
from tests.payloads import wheel
from tests.upstreams import Nginx, OutboundProxy, self_signed_certificate

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def outbound_proxy(tmp_path_factory):
    proxy = OutboundProxy(tmp_path_factory.mktemp("outbound-proxy")).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("upstream-tls"))


@pytest.fixture(scope="module")
def proxied_server(
    django_db_setup, django_db_blocker, blob_dir, spool_dir, tmp_path_factory, outbound_proxy, certificate
):
    server = start_live_server(
        blob_dir,
        spool_dir,
        tmp_path_factory.mktemp("pypi-virtual-proxy-live"),
        PACKHOUSE_VR_ALLOW_HTTP="true",
        PACKHOUSE_VR_ALLOWED_HOSTS="127.0.0.1",
        PACKHOUSE_VR_OUTBOUND_PROXY=outbound_proxy.url,
        SSL_CERT_FILE=str(certificate[0]),
    )
    yield server
    stop_live_server(server)


def index_tree(root, name, version):
    wheel_name, content = wheel(name, version, "proxied")
    (root / "packages").mkdir(parents=True)
    (root / "packages" / wheel_name).write_bytes(content)
    page = root / "simple" / name
    page.mkdir(parents=True)
    digest = hashlib.sha256(content).hexdigest()
    (page / "index.html").write_text(f'<a href="../../packages/{wheel_name}#sha256={digest}">{wheel_name}</a>')
    return wheel_name


def api(server, token, path, body):
    request = urllib.request.Request(
        server.api(path),
        data=json.dumps(body).encode(),
        headers={"Private-Token": token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_upstream_requests_go_through_the_proxy(proxied_server, outbound_proxy, certificate, tmp_path):
    secure_wheel = index_tree(tmp_path / "secure", "secure-pkg", "1.0")
    plain_wheel = index_tree(tmp_path / "plain", "plain-pkg", "1.0")
    servers = Nginx(
        tmp_path / "nginx",
        {"secure": ("127.0.0.1", tmp_path / "secure"), "plain": ("127.0.0.1", tmp_path / "plain")},
        tls={"secure": certificate},
    ).start()
    try:
        group = GroupFactory(path="acme")
        user = UserFactory()
        MembershipFactory(user=user, group=group, access_level=AccessLevel.MAINTAINER)
        token = AccessTokenFactory(user=user).plaintext
        registry = api(
            proxied_server, token, f"groups/{group.pk}/-/virtual_registries/packages/pypi/registries", {"name": "py"}
        )
        for site in ("secure", "plain"):
            path = f"virtual_registries/packages/pypi/registries/{registry['id']}/upstreams"
            api(proxied_server, token, path, {"url": f"{servers.url(site)}/simple", "name": site})
        simple = proxied_server.api(f"virtual_registries/packages/pypi/{registry['id']}/simple")
        index = simple.replace("http://", f"http://__token__:{token}@")

        target = tmp_path / "site"
        args = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target", str(target)]
        code, output = run([*args, "--index-url", index, "secure-pkg", "plain-pkg"], client_env())
        assert code == 0, output
        assert (target / "secure_pkg" / "__init__.py").read_text() == "VALUE = 1  # proxied\n"
        assert (target / "plain_pkg" / "__init__.py").read_text() == "VALUE = 1  # proxied\n"
        assert CacheEntry.objects.get(relative_path__endswith=secure_wheel).verified
        assert CacheEntry.objects.get(relative_path__endswith=plain_wheel).verified

        secure_port, plain_port = servers.url("secure").rsplit(":", 1)[1], servers.url("plain").rsplit(":", 1)[1]
        connected = outbound_proxy.connected()
        # https through a CONNECT tunnel, http forwarded: both to the vetted address, nothing else.
        assert set(connected) == {f"127.0.0.1:{secure_port}", f"127.0.0.1:{plain_port}"}, connected
        assert any(line.startswith("GET /simple/secure-pkg/") for line, _ in servers.requests("secure"))
        assert any(line.startswith(f"GET /packages/{plain_wheel}") for line, _ in servers.requests("plain"))

        outbound_proxy.stop()
        request = urllib.request.Request(f"{simple}/never-cached/", headers={"Private-Token": token})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 503  # the proxy is down: no way around it
        assert not any("never-cached" in line for line, _ in servers.requests("secure") + servers.requests("plain"))
    finally:
        servers.stop()
