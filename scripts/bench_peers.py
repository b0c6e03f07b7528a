"""The peers of `make bench PEERS=1` (`scripts/bench.py --peers`): Verdaccio (npm), pypiserver and
devpi-server (PyPI), each in a process of its own on a free 127.0.0.1 port, pinned to the same
core as Packhouse, seeded with the same files Packhouse serves (copied from its answers).

Versions are pinned. pypiserver and devpi are installed from PyPI into virtual environments of
their own under var/bench-tools/ on first use; Verdaccio from the npm registry under
var/test-tools/ (tests/upstreams.py, as the virtual registry tests use it). Each runs as its
documentation suggests for a small team: pypiserver with waitress and its cached directory backend
(`pypiserver[cache]`), devpi-server with its defaults (waitress, 50 threads, no core metadata:
`--enable-core-metadata` is experimental), Verdaccio with its htpasswd auth and its request log.
They are seeded on both cores and pinned (`Peer.pin`) before anything is measured."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path
from urllib.parse import quote

from bench_common import free_port, http, pin_processes, pinned, process_tree, wait_for

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "var" / "bench-tools"

PYPISERVER = ["pypiserver[cache]==2.4.2", "waitress==3.0.2"]
DEVPI = ["devpi-server==6.20.3", "devpi-client==7.3.0"]


def tool_venv(name, requirements):
    """A virtual environment of its own under var/bench-tools with `requirements` installed
    (once: a marker file records what was installed); its bin directory."""
    directory = TOOLS / name
    marker = directory / ".installed"
    wanted = "\n".join(requirements)
    if not (marker.exists() and marker.read_text() == wanted):
        shutil.rmtree(directory, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
        subprocess.run(
            [str(directory / "bin" / "pip"), "install", "--quiet", *requirements],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        marker.write_text(wanted)
    return directory / "bin"


class Peer:
    """A server process of its own (its own session, stopped as a group), pinned like Packhouse."""

    label = ""

    def __init__(self, workdir):
        self.workdir = workdir / self.label
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def launch(self, args, ready_path="/", env=None):
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            args,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            wait_for(self.url + ready_path, seconds=120)
        except OSError:
            self.stop()
            log = (self.workdir / "server.log").read_text()[-3000:]
            raise RuntimeError(f"{self.label} did not start:\n{log}") from None

    def pin(self):
        """Onto the servers' core (when pinning), once seeded: devpi takes its uploads one at a
        time, a second core halves its seeding, and nothing is measured before this."""
        if pinned():
            pin_processes(self.pids())

    def pids(self):
        return process_tree(self.process.pid) if self.process else []

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class PypiServer(Peer):
    label = "pypiserver"

    def start(self):
        bin_dir = tool_venv("pypiserver-2.4.2", PYPISERVER)
        self.packages = self.workdir / "packages"
        self.packages.mkdir(exist_ok=True)
        self.launch(
            [
                str(bin_dir / "pypi-server"),
                "run",
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
                "-a",
                ".",
                "-P",
                ".",
                "--disable-fallback",
                "--server",
                "auto",  # waitress when installed (its 'Server: waitress' header says so)
                "--backend",
                "cached-dir",
                str(self.packages),
            ],
            ready_path="/health",
        )
        return self

    @property
    def index_url(self):
        return f"{self.url}/simple"

    def seed(self, files):
        """`files`: paths of wheels; pypiserver serves what its directory holds."""
        for path in files:
            shutil.copyfile(path, self.packages / path.name)


class Devpi(Peer):
    label = "devpi"
    USER, PASSWORD = "bench", "bench-password"

    def start(self):
        bin_dir = tool_venv("devpi-6.20.3", DEVPI)
        serverdir = self.workdir / "server"
        if not serverdir.exists():
            subprocess.run(
                [str(bin_dir / "devpi-init"), "--serverdir", str(serverdir), "--no-root-pypi"],
                check=True,
                capture_output=True,
            )
        self.launch(
            [
                str(bin_dir / "devpi-server"),
                "--serverdir",
                str(serverdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            ready_path="/+api",
        )
        client = ["--clientdir", str(self.workdir / "client")]
        devpi = str(bin_dir / "devpi")
        for command in (
            ["use", self.url],
            ["user", "-c", self.USER, f"password={self.PASSWORD}", "email=bench@example.com"],
            ["login", self.USER, "--password", self.PASSWORD],
            ["index", "-c", "dev", "bases=", "volatile=True"],
        ):
            subprocess.run([devpi, *command, *client], check=True, capture_output=True)
        return self

    @property
    def index_url(self):
        return f"{self.url}/{self.USER}/dev/+simple"

    def seed(self, uploads):
        """`uploads`: (name, version, file name, bytes); twine's legacy upload with basic auth, one
        at a time (devpi writes one at a time anyway; concurrent uploads were answered 500 under
        load), each tried up to three times."""
        from tests.payloads import upload_form

        credential = base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        for item in uploads:
            body, content_type = upload_form(*item)
            headers = {"Content-Type": content_type, "Authorization": f"Basic {credential}"}
            for attempt in range(3):
                try:
                    http("POST", f"{self.url}/{self.USER}/dev/", body=body, headers=headers)
                    break
                except urllib.error.HTTPError as exc:
                    if exc.code == 409 and attempt > 0:  # the failed try stored it after all
                        break
                    if exc.code < 500 or attempt == 2:
                        raise
                    time.sleep(1)


class VerdaccioPeer(Peer):
    label = "verdaccio"

    def start(self):
        sys.path.insert(0, str(ROOT))
        from tests.upstreams import Verdaccio

        self.server = Verdaccio(self.workdir)
        self.port = self.server.port
        self.url = self.server.url
        self.server.start()
        self.process = self.server.process
        return self

    def stop(self):
        self.server.stop()

    def npmrc_lines(self, scope="@bench"):
        return [f"{scope}:registry={self.url}/"]

    def seed(self, name, versions):
        """`versions`: (version, manifest, tarball bytes), published one after the other as
        `npm publish` sends them (Verdaccio rewrites the package's document at each)."""
        credential = base64.b64encode(f"{self.server.USER}:{self.server.PASSWORD}".encode()).decode()
        for version, manifest, tarball in versions:
            manifest = {k: v for k, v in manifest.items() if not k.startswith("_")}
            file_name = f"{name}-{version}.tgz"  # as libnpmpublish names the attachment
            manifest["dist"] = {**manifest["dist"], "tarball": f"{self.url}/{name}/-/{file_name}"}
            document = {
                "_id": name,
                "name": name,
                "dist-tags": {"latest": version},
                "versions": {version: manifest},
                "_attachments": {
                    file_name: {
                        "content_type": "application/octet-stream",
                        "data": base64.b64encode(tarball).decode(),
                        "length": len(tarball),
                    }
                },
            }
            http(
                "PUT",
                f"{self.url}/{quote(name, safe='@')}",
                body=json.dumps(document).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Basic {credential}"},
            )
