"""The outbound side of virtual registries: the address policy (spec §5.1), the client's redirect
rules against real local servers, and upstream secrets encrypted at rest (§5.2)."""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet

from registry import secrets
from registry.virtual import addresses, http


@pytest.fixture
def open_network(settings):
    settings.VR_ALLOW_HTTP = True
    settings.VR_ALLOW_LOCAL_NETWORK = False
    settings.VR_ALLOWED_HOSTS = []
    return settings


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/",
        "http://[::1]/",
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[2002:c0a8:0101::1]/",  # 6to4 of 192.168.1.1
        "http://10.1.2.3/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://user:pw@93.184.215.14/",
        "ftp://93.184.215.14/",
        "file:///etc/passwd",
    ],
)
def test_refused_addresses(open_network, url):
    with pytest.raises(addresses.AddressRefused):
        addresses.vet(url)


def test_public_address_passes_and_https_only_by_default(open_network, settings):
    assert addresses.vet("http://93.184.215.14/maven2").addresses == ("93.184.215.14",)
    settings.VR_ALLOW_HTTP = False
    with pytest.raises(addresses.AddressRefused, match="https"):
        addresses.vet("http://93.184.215.14/")


def test_overrides(open_network, settings):
    settings.VR_ALLOWED_HOSTS = ["10.0.0.0/8"]
    assert addresses.vet("http://10.1.2.3/").host == "10.1.2.3"
    with pytest.raises(addresses.AddressRefused):
        addresses.vet("http://127.0.0.1/")
    settings.VR_ALLOW_LOCAL_NETWORK = True
    assert addresses.vet("http://127.0.0.1/").addresses == ("127.0.0.1",)


def test_own_host_refused(open_network, settings):
    settings.VR_ALLOW_LOCAL_NETWORK = True
    settings.EXTERNAL_URL = "http://127.0.0.1:8000"
    with pytest.raises(addresses.AddressRefused, match="local upstream"):
        addresses.vet("http://127.0.0.1:8000/api/v4/projects/1/packages/maven")


class _Recorder(BaseHTTPRequestHandler):
    """Answers /redirect?to=<url> with a 302 there, and anything else with the Authorization
    header it received."""

    def do_GET(self):
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        body = (self.headers.get("Authorization") or "none").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - http.server's naming
        """The same redirect; else the body it received, after the Authorization header."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/redirect?to="):
            self.do_GET()
            return
        answer = (self.headers.get("Authorization") or "none").encode() + b" " + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorders():
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_redirects_keep_credentials_on_the_same_origin_only(settings, recorders):
    settings.VR_ALLOW_HTTP = True
    settings.VR_ALLOW_LOCAL_NETWORK = True
    first, second = recorders
    auth = http.basic_header("bob", "pw")
    same = http.request("GET", f"{first}/redirect?to={first}/file", auth=auth)
    assert http.read_small(same, 1024) == auth["Authorization"].encode()
    other = http.request("GET", f"{first}/redirect?to={second}/file", auth=auth)
    assert http.read_small(other, 1024) == b"none"


def test_redirect_into_a_refused_range_is_refused(settings, recorders):
    settings.VR_ALLOW_HTTP = True
    settings.VR_ALLOWED_HOSTS = ["127.0.0.1"]
    with pytest.raises(http.UpstreamUnavailable, match="address policy"):
        http.request("GET", f"{recorders[0]}/redirect?to=http://169.254.169.254/latest")


def test_a_post_sends_its_body_follows_no_redirect_and_obeys_the_address_policy(settings, recorders):
    settings.VR_ALLOW_HTTP = True
    settings.VR_ALLOWED_HOSTS = ["127.0.0.1"]
    first, second = recorders
    auth = http.basic_header("bob", "pw")
    sent = http.request("POST", f"{first}/audit", auth=auth, body=b'{"a":["1"]}')
    assert sent.status == 200 and http.read_small(sent, 1024) == auth["Authorization"].encode() + b' {"a":["1"]}'
    redirected = http.request("POST", f"{first}/redirect?to={second}/audit", auth=auth, body=b"{}")
    assert redirected.status == 302  # answered as it is: the body is not sent on
    redirected.release()
    with pytest.raises(http.UpstreamUnavailable, match="address policy"):
        http.request("POST", "http://169.254.169.254/latest", body=b"{}")
    with pytest.raises(ValueError):
        http.request("PUT", f"{first}/audit", body=b"{}")


def test_secrets_rotate_between_keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    stored = secrets.encrypt("s3cret")
    assert "s3cret" not in stored and secrets.decrypt(stored) == "s3cret"
    settings.ENCRYPTION_KEYS = [new, old]
    assert secrets.decrypt(stored) == "s3cret"
    rotated = secrets.rotate(stored)
    settings.ENCRYPTION_KEYS = [new]
    assert secrets.decrypt(rotated) == "s3cret"
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(stored)


@pytest.mark.django_db
def test_rotate_secrets_re_encrypts_webhook_tokens_and_upstream_credentials(settings):
    from django.core.management import call_command

    from registry.models import Webhook
    from tests.factories import ProjectFactory

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    hook = Webhook.objects.create(
        project=ProjectFactory(), url="https://hooks.example.com/x", encrypted_token=secrets.encrypt("hook-token")
    )
    settings.ENCRYPTION_KEYS = [new, old]
    call_command("rotate_secrets", stdout=open(os.devnull, "w"))  # noqa: SIM115
    settings.ENCRYPTION_KEYS = [new]
    hook.refresh_from_db()
    assert secrets.decrypt(hook.encrypted_token) == "hook-token"
