"""Real upstream servers for virtual registry tests (no mocks), in subprocesses on free 127.0.0.1
ports, that a test can stop (an outage):

- StaticUpstream: python's own `http.server` serving a directory (GET and HEAD, Last-Modified,
  If-Modified-Since answered 304), e.g. Debian's Maven repository as "Maven Central".
- AdvisoryUpstream: an npm registry from files (packuments, tarballs) that also answers npm's
  audit endpoints from an advisories file and logs every audit request body it receives
  (tests/advisory_server.py): no offline advisory service exists to stand in for npmjs.
- Verdaccio: the npm registry server, installed from the npm registry on first use.
- Nginx: Debian's nginx serving directories, one `server` per (address, port), each with its
  own access log that records the Authorization header each request carried; `.gz` files
  next to a file are sent instead of it with `Content-Encoding: gzip` (gzip_static); https
  with a given certificate.
- OutboundProxy: proxy.py (pinned in the test extras), an HTTP proxy with CONNECT and Basic
  proxy authentication, logging each request it relays."""

import base64
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import free_port, installing


def wait_listening(process, port, seconds, what):
    """Until `process` accepts connections on 127.0.0.1:`port`; RuntimeError naming `what` when it
    exits or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


class StaticUpstream:
    def __init__(self, directory, log_path=None):
        self.directory = directory
        self.port = free_port()
        self.process = None
        self.log_path = log_path or f"{directory}.requests.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),  # noqa: SIM115 - the child holds it
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the upstream server did not start") from None
                time.sleep(0.1)

    def requests(self):
        """The request lines the server logged (`GET /path HTTP/1.1`), oldest first."""
        try:
            with open(self.log_path, errors="replace") as log:
                return [line.split('"')[1] for line in log if line.count('"') >= 2]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def static_pypi_sdist(root, payload):
    """A started StaticUpstream serving `root` as a PEP 503 index of one project, `demo`, whose
    page lists `demo-1.0.tar.gz` (`payload`, with its sha256) under `files/`."""
    page = root / "simple" / "demo"
    page.mkdir(parents=True)
    digest = hashlib.sha256(payload).hexdigest()
    page.joinpath("index.html").write_text(
        f'<html><body><a href="../../files/demo-1.0.tar.gz#sha256={digest}">demo-1.0.tar.gz</a></body></html>'
    )
    (root / "files").mkdir()
    (root / "files" / "demo-1.0.tar.gz").write_bytes(payload)
    return StaticUpstream(root, log_path=root.parent / f"{root.name}.log").start()


class AdvisoryUpstream:
    """tests/advisory_server.py on a free 127.0.0.1 port: packuments and tarballs from `files`
    (`publish`), advisories from `advisories` (`set_advisories`), audit requests in `audits()`."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.files = self.directory / "files"
        self.advisories_path = self.directory / "advisories.json"
        self.log_path = self.directory / "audits.log"
        self.port = free_port()
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def set_advisories(self, advisories):
        self.advisories_path.write_text(json.dumps(advisories))

    def publish(self, name, version, files):
        """A tarball of `files` ({path: text} under `package/`) as `name`@`version`, added to
        the name's packument (the upstream's own absolute tarball URL, integrity and shasum)."""
        import io
        import tarfile

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            manifest = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
            for path, text in {"package.json": json.dumps(manifest), **files}.items():
                data = text.encode()
                info = tarfile.TarInfo(f"package/{path}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                archive.addfile(info, io.BytesIO(data))
        tarball = buffer.getvalue()
        file_name = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"
        (self.files / "-" / "tarballs").mkdir(parents=True, exist_ok=True)
        (self.files / "-" / "tarballs" / file_name).write_bytes(tarball)
        packument_path = self.files / name  # `/@scope%2fname` is the file `@scope/name`
        packument_path.parent.mkdir(parents=True, exist_ok=True)
        packument = json.loads(packument_path.read_text()) if packument_path.exists() else {"name": name}
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        packument.setdefault("versions", {})[version] = {
            **manifest,
            "dist": {
                "tarball": f"{self.url}/-/tarballs/{file_name}",
                "integrity": integrity,
                "shasum": hashlib.sha1(tarball).hexdigest(),  # noqa: S324 - npm's own field
            },
        }
        packument["dist-tags"] = {"latest": version}
        packument_path.write_text(json.dumps(packument))
        return packument

    def start(self):
        self.files.mkdir(parents=True, exist_ok=True)
        if not self.advisories_path.exists():
            self.set_advisories({})
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("advisory_server.py")), str(self.port), str(self.files),
             str(self.advisories_path), str(self.log_path)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "server.log", "ab"),  # noqa: SIM115 - the child holds it
        )  # fmt: skip
        wait_listening(self.process, self.port, 15, "the advisory server")
        return self

    def audits(self):
        """The audit requests received, oldest first: {path, content_encoding, authorization,
        body} (the body decoded)."""
        try:
            return [json.loads(line) for line in self.log_path.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


VERDACCIO_VERSION = "6.8.0"  # 6.10 wants Node 22; node-fetch pinned to 2.7.0 so that it installs
TOOLS = Path(__file__).resolve().parent.parent / "var" / "test-tools"


def install_verdaccio():
    """Verdaccio from the npm registry, installed once under var/test-tools; its entry point."""
    with installing():
        return _install_verdaccio()


def _install_verdaccio():
    directory = TOOLS / f"verdaccio-{VERDACCIO_VERSION}"
    entry = directory / "node_modules" / "verdaccio" / "bin" / "verdaccio"
    if entry.exists():
        return entry
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "package.json").write_text(
        json.dumps(
            {
                "name": "packhouse-test-verdaccio",
                "private": True,
                "dependencies": {"verdaccio": VERDACCIO_VERSION},
                "overrides": {"node-fetch": "2.7.0"},
            }
        )
    )
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0 or not entry.exists():
        raise RuntimeError(f"installing Verdaccio failed:\n{result.stdout}\n{result.stderr}")
    return entry


class Verdaccio:
    """A real Verdaccio (no uplinks) on a free 127.0.0.1 port: anyone reads, `USER` publishes.
    Its request log (level http) is in `log_path`."""

    USER, PASSWORD = "publisher", "publisher-password"

    def __init__(self, directory):
        self.directory = Path(directory)
        self.port = free_port()
        self.process = None
        self.log_path = self.directory / "verdaccio.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage(self):
        return self.directory / "storage"

    def npmrc_lines(self):
        credential = base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        return [f"registry={self.url}/", f"//127.0.0.1:{self.port}/:_auth={credential}"]

    def start(self):
        entry = install_verdaccio()
        self.storage.mkdir(parents=True, exist_ok=True)
        digest = base64.b64encode(hashlib.sha1(self.PASSWORD.encode()).digest()).decode()
        (self.directory / "htpasswd").write_text(f"{self.USER}:{{SHA}}{digest}\n")
        config = self.directory / "config.yaml"
        config.write_text(
            f"""storage: {self.storage}
auth:
  htpasswd:
    file: {self.directory / "htpasswd"}
    max_users: -1
uplinks: {{}}
packages:
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
log: {{type: stdout, format: json, level: http}}
"""
        )
        self.process = subprocess.Popen(
            ["node", str(entry), "--config", str(config), "--listen", f"127.0.0.1:{self.port}"],
            cwd=self.directory,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 - the child holds it
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/-/ping", timeout=1).read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Verdaccio did not start:\n" + self.log_path.read_text()) from None
                time.sleep(0.2)

    def requests(self):
        """The request lines Verdaccio logged ("GET /path"), oldest first."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            request = record.get("request") if isinstance(record, dict) else None
            if isinstance(request, dict) and "method" in request:
                lines.append(f"{request['method']} {request.get('url', '')}")
        return lines

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Nginx:
    """Debian's nginx serving `sites`: {name: (address, directory)}, each on a free port of its
    address (any 127/8 address: a second host without a DNS name). `url(name)`, and
    `requests(name)`: [(request line, Authorization header or "-")] oldest first."""

    def __init__(self, directory, sites, tls=None):
        """`tls`: {site name: (certificate file, key file)} for the sites served over https."""
        self.directory = Path(directory)
        self.sites = {name: (address, Path(root), free_port()) for name, (address, root) in sites.items()}
        self.tls = tls or {}
        self.process = None

    def url(self, name):
        address, _, port = self.sites[name]
        return f"{'https' if name in self.tls else 'http'}://{address}:{port}"

    def start(self):
        self.directory.mkdir(parents=True, exist_ok=True)

        def listen(name, address, port):
            if name not in self.tls:
                return f"listen {address}:{port};"
            cert, key = self.tls[name]
            return f"listen {address}:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};"

        servers = "".join(
            f"""    server {{
        {listen(name, address, port)}
        root {root};
        access_log {self.directory / f"{name}.log"} requests;
        location / {{ gzip_static on; }}
    }}
"""
            for name, (address, root, port) in self.sites.items()
        )
        user = "user root root;\n" if os.geteuid() == 0 else ""
        config = self.directory / "nginx.conf"
        config.write_text(
            f"""daemon off;
{user}worker_processes 1;
pid {self.directory / "nginx.pid"};
error_log {self.directory / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    log_format requests '"$request" "$http_authorization"';
    client_body_temp_path {self.directory / "body"};
    proxy_temp_path {self.directory / "proxy"};
    fastcgi_temp_path {self.directory / "fastcgi"};
    uwsgi_temp_path {self.directory / "uwsgi"};
    scgi_temp_path {self.directory / "scgi"};
{servers}}}
"""
        )
        self.process = subprocess.Popen(
            ["nginx", "-c", str(config), "-p", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "out.log", "ab"),  # noqa: SIM115 - the child holds it
        )
        deadline = time.monotonic() + 15
        for name in self.sites:
            while True:
                try:
                    context = ssl._create_unverified_context() if name in self.tls else None  # noqa: S323
                    urllib.request.urlopen(self.url(name) + "/", timeout=1, context=context).read()
                    break
                except urllib.error.HTTPError:
                    break  # it answers (403/404 on a directory without an index)
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("nginx did not start: " + (self.directory / "error.log").read_text())
                    time.sleep(0.1)
        return self

    def requests(self, name):
        try:
            lines = (self.directory / f"{name}.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            parts = line.split('" "')
            if len(parts) == 2:
                found.append((parts[0].lstrip('"'), parts[1].rstrip('"')))
        return [entry for entry in found if entry[0] != "GET / HTTP/1.1"]

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def self_signed_certificate(directory):
    """(certificate, key) files for 127.0.0.1, valid one day (openssl)."""
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class OutboundProxy:
    """proxy.py on a free 127.0.0.1 port, requiring Basic proxy credentials `USER:PASSWORD`.
    `connected()`: the `host:port` of each upstream connection it opened, oldest first (its
    debug log, written as it connects; its access log is written only when a client closes)."""

    USER, PASSWORD = "egress", "egress-password"

    def __init__(self, directory):
        self.directory = Path(directory)
        self.port = free_port()
        self.process = None
        self.log_path = self.directory / "proxy.log"

    @property
    def url(self):
        return f"http://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}"

    def start(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(self.port),
             "--num-workers", "1", "--num-acceptors", "1", "--basic-auth", f"{self.USER}:{self.PASSWORD}",
             "--log-file", str(self.log_path), "--log-level", "DEBUG", "--data-dir", str(self.directory / "data")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "out.log", "ab"),  # noqa: SIM115 - the child holds it
        )  # fmt: skip
        wait_listening(self.process, self.port, 30, "proxy.py")
        return self

    def connected(self):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        marker = " - Connecting to upstream "
        return [line.split(marker, 1)[1].strip() for line in lines if marker in line]

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
