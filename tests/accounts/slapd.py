"""A real OpenLDAP server for the tests: Debian's slapd, installed when missing (root and
Debian's mirror, as the other client tests), with its own configuration and database in a
temporary directory, on a free port."""

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.helpers import installing

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
PACKAGES = ["slapd", "ldap-utils"]

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {root}/data
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
"""


def install():
    with installing():
        _install()


def _install():
    if shutil.which("slapd") or Path("/usr/sbin/slapd").exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
        check=True,
        env=env,
        capture_output=True,
        timeout=900,
    )


class Slapd:
    def __init__(self, root, port, ldif):
        self.root, self.port = Path(root), port
        self.uri = f"ldap://127.0.0.1:{port}"
        (self.root / "data").mkdir(parents=True)
        self.config = self.root / "slapd.conf"
        self.config.write_text(CONFIG.format(root=self.root, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PASSWORD))
        (self.root / "data.ldif").write_text(ldif)
        subprocess.run(
            ["/usr/sbin/slapadd", "-f", str(self.config), "-l", str(self.root / "data.ldif")],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.log = open(self.root / "slapd.log", "wb")  # noqa: SIM115 - lives as long as the server
        # -d 0: stay in the foreground (a child of the test), logging nothing but errors.
        self.process = subprocess.Popen(
            ["/usr/sbin/slapd", "-f", str(self.config), "-h", self.uri, "-d", "0"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self):
        import ldap

        deadline = time.monotonic() + 30
        while True:
            try:
                connection = ldap.initialize(self.uri)
                connection.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
                connection.unbind_s()
                return
            except ldap.LDAPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.root / "slapd.log").read_text(errors="replace")) from None
                time.sleep(0.1)

    def modify(self, dn, changes):
        """ldap.modify_s as the directory's admin (`changes`: python-ldap modlist)."""
        import ldap

        connection = ldap.initialize(self.uri)
        connection.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
        try:
            connection.modify_s(dn, changes)
        finally:
            connection.unbind_s()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
