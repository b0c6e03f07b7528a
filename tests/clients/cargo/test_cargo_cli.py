"""The real cargo (1.95) against a live gunicorn, over the sparse registry protocol: publish with
every kind of token, build a crate that depends on what was published from the project and from
the group registry, yank and unyank, and the refusals.

Each run uses a private CARGO_HOME whose config.toml names the registries
(`index = "sparse+http://…/index/"`) and takes tokens from `CARGO_REGISTRIES_<NAME>_TOKEN`, which
cargo sends as it is in `Authorization`. The crates have no crates.io dependencies (nothing here
reaches crates.io).
"""

import os
import shutil
import subprocess

import pytest

from accounts.roles import AccessLevel
from registry.models import Package, PackageVersion
from tests.factories import (
    AccessTokenFactory,
    DeployTokenFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    credential,
)

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

LIB = 'pub fn shout(s: &str) -> String {{ format!("{{}}{suffix}", s.to_uppercase()) }}\n'
MAIN = 'fn main() { println!("{}", shout::shout("hi")); }\n'


def _cargo_binary():
    """The toolchain's cargo itself (a rustup proxy would look for its settings under CARGO_HOME).
    Missing, the test fails: Debian's cargo (0.66) predates sparse registries and their tokens."""
    rustup = shutil.which("rustup")
    if rustup:
        result = subprocess.run([rustup, "which", "cargo"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return result.stdout.strip()
    found = shutil.which("cargo")
    assert found, "cargo 1.74 or later is needed (rustup's stable toolchain)"
    return found


class Cargo:
    def __init__(self, tmp_path, registry):
        self.binary = _cargo_binary()
        self.tmp_path = tmp_path
        self.registry = registry
        self.count = 0

    def home(self, registries, tokens):
        """A fresh CARGO_HOME: `registries` {name: "projects/<id>" or "groups/<id>/-"}, and the
        environment carrying `tokens` {name: token}."""
        self.count += 1
        home = self.tmp_path / f"cargo-home-{self.count}"
        home.mkdir()
        lines = []
        for name, base in registries.items():
            index = f"sparse+{self.registry.url}/api/v4/{base}/packages/cargo/index/"
            lines += [f"[registries.{name}]", f'index = "{index}"', 'credential-provider = "cargo:token"', ""]
        lines += ["[net]", "retry = 0", "", "[term]", "color = 'never'", ""]
        (home / "config.toml").write_text("\n".join(lines))
        env = {key: value for key, value in os.environ.items() if not key.startswith("CARGO")}
        env.update({"CARGO_HOME": str(home), "CARGO_TARGET_DIR": str(self.tmp_path / f"target-{self.count}")})
        env["CARGO_HTTP_TIMEOUT"] = "60"
        for name, token in tokens.items():
            env[f"CARGO_REGISTRIES_{name.upper().replace('-', '_')}_TOKEN"] = token
        return env

    def run(self, cwd, env, *args, check=True):
        result = subprocess.run(
            [self.binary, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"cargo {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result.returncode, output

    def library(self, version, suffix="!", name="shout"):
        self.count += 1
        directory = self.tmp_path / f"{name}-{version}-{self.count}"
        (directory / "src").mkdir(parents=True)
        (directory / "Cargo.toml").write_text(
            f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'
            'license = "MIT"\ndescription = "Shouts."\n\n[features]\ndefault = []\nloud = []\n'
        )
        (directory / "src" / "lib.rs").write_text(LIB.format(suffix=suffix))
        return directory

    def application(self, registry, requirement):
        self.count += 1
        directory = self.tmp_path / f"app-{self.count}"
        (directory / "src").mkdir(parents=True)
        (directory / "Cargo.toml").write_text(
            '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
            f'[dependencies]\nshout = {{ version = "{requirement}", registry = "{registry}" }}\n'
        )
        (directory / "src" / "main.rs").write_text(MAIN)
        return directory

    def publish(self, directory, env, registry="packhouse", check=True):
        return self.run(directory, env, "publish", "--registry", registry, "--no-verify", "--allow-dirty", check=check)

    def build_and_run(self, app, env):
        """`cargo run`: resolves a fresh lockfile, downloads, builds; returns what the program
        printed and the version the lockfile chose."""
        self.run(app, env, "generate-lockfile")
        _, output = self.run(app, env, "run", "--quiet")
        lock = (app / "Cargo.lock").read_text()
        locked = lock.split('name = "shout"\nversion = "', 1)[1].split('"', 1)[0]
        return output.strip().splitlines()[-1], locked


@pytest.fixture
def cargo(tmp_path, live_registry):
    return Cargo(tmp_path, live_registry)


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="crates")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


@pytest.mark.parametrize("kind", ["personal", "project", "group", "deploy", "job"])
def test_publish_with_each_token_then_build_a_dependent(cargo, project, developer, kind):
    token = credential(kind, project, developer)[1]
    env = cargo.home({"packhouse": f"projects/{project.pk}"}, {"packhouse": token})
    cargo.publish(cargo.library("1.0.0"), env)
    version = PackageVersion.objects.get()
    assert (version.package.name, version.version, version.created_via) == ("shout", "1.0.0", kind)
    assert version.files.get().file_name == "shout-1.0.0.crate"

    app = cargo.application("packhouse", "1")
    assert cargo.build_and_run(app, env) == ("HI!", "1.0.0")


def test_group_registry_builds_from_every_project(cargo, group, project, developer):
    other = ProjectFactory(group=GroupFactory(path="tools", parent=group), path="more")
    MembershipFactory(user=developer, project=other, access_level=AccessLevel.DEVELOPER)
    token = AccessTokenFactory(user=developer).plaintext
    env = cargo.home(
        {"packhouse": f"projects/{project.pk}", "other": f"projects/{other.pk}", "acme": f"groups/{group.pk}/-"},
        {"packhouse": token, "other": token, "acme": token},
    )
    cargo.publish(cargo.library("1.0.0"), env)
    cargo.publish(cargo.library("1.1.0", suffix="?"), env, registry="other")
    assert cargo.build_and_run(cargo.application("acme", "1"), env) == ("HI?", "1.1.0")
    assert cargo.build_and_run(cargo.application("acme", "~1.0"), env) == ("HI!", "1.0.0")

    # A caller who may pull only from the first project sees only its crate through the group.
    reader = UserFactory()
    MembershipFactory(user=reader, project=project, access_level=AccessLevel.REPORTER)
    env = cargo.home({"acme": f"groups/{group.pk}/-"}, {"acme": AccessTokenFactory(user=reader).plaintext})
    assert cargo.build_and_run(cargo.application("acme", "1"), env) == ("HI!", "1.0.0")


def test_yank_then_a_fresh_lockfile_refuses_the_version(cargo, project, developer):
    maintainer = UserFactory(username="boss")
    MembershipFactory(user=maintainer, project=project, access_level=AccessLevel.MAINTAINER)
    dev = cargo.home(
        {"packhouse": f"projects/{project.pk}"}, {"packhouse": AccessTokenFactory(user=developer).plaintext}
    )
    boss = cargo.home(
        {"packhouse": f"projects/{project.pk}"}, {"packhouse": AccessTokenFactory(user=maintainer).plaintext}
    )
    cargo.publish(cargo.library("1.0.0"), dev)
    cargo.publish(cargo.library("1.0.1", suffix="?"), dev)
    locked_app = cargo.application("packhouse", "1")
    assert cargo.build_and_run(locked_app, dev) == ("HI?", "1.0.1")

    code, output = cargo.run(locked_app, dev, "yank", "--registry", "packhouse", "shout@1.0.1", check=False)
    assert code != 0 and "403" in output, output  # a Developer may not yank
    cargo.run(locked_app, boss, "yank", "--registry", "packhouse", "shout@1.0.1")
    assert PackageVersion.objects.get(version="1.0.1").metadata["withdrawn"]["by"] == "boss"  # set_withdrawn's

    # The existing lockfile still builds (a yanked crate stays downloadable) ...
    _, output = cargo.run(locked_app, dev, "run", "--quiet")
    assert output.strip().splitlines()[-1] == "HI?"
    # ... a fresh lockfile takes 1.0.0, and a requirement only the yanked version meets fails.
    assert cargo.build_and_run(cargo.application("packhouse", "1"), dev) == ("HI!", "1.0.0")
    pinned = cargo.application("packhouse", "=1.0.1")
    code, output = cargo.run(pinned, dev, "generate-lockfile", check=False)
    assert code != 0 and "yanked" in output, output

    cargo.run(locked_app, boss, "yank", "--undo", "--registry", "packhouse", "shout@1.0.1")
    assert cargo.build_and_run(cargo.application("packhouse", "1"), dev) == ("HI?", "1.0.1")
    withdrawals = PackageVersion.objects.get(version="1.0.1").metadata["withdrawals"]
    assert [(entry["action"], entry["by"]) for entry in withdrawals] == [("yank", "boss"), ("unyank", "boss")]


def test_refusals(cargo, project, developer):
    base = {"packhouse": f"projects/{project.pk}"}
    wrong = cargo.home(base, {"packhouse": "glpat-not-a-token"})
    code, output = cargo.publish(cargo.library("1.0.0"), wrong, check=False)
    assert code != 0 and "401" in output, output
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext
    code, output = cargo.publish(cargo.library("1.0.0"), cargo.home(base, {"packhouse": read_only}), check=False)
    assert code != 0 and "403" in output, output
    assert not PackageVersion.objects.exists()

    good = cargo.home(base, {"packhouse": AccessTokenFactory(user=developer).plaintext})
    cargo.publish(cargo.library("1.0.0"), good)
    code, output = cargo.publish(cargo.library("1.0.0", suffix="?"), good, check=False)
    assert code != 0 and "already" in output, output  # cargo reads the index first and refuses
    code, output = cargo.publish(cargo.library("1.0.1", name="Shout"), good, check=False)
    assert code != 0 and "previously named `shout`" in output, output
    assert list(Package.objects.values_list("name", flat=True)) == ["shout"]
    assert list(PackageVersion.objects.values_list("version", flat=True)) == ["1.0.0"]

    # Without a token, a private project's index asks for one; a wrong one is refused.
    code, output = cargo.run(
        cargo.application("packhouse", "1"), cargo.home(base, {}), "generate-lockfile", check=False
    )
    assert code != 0 and "token" in output, output
    code, output = cargo.run(cargo.application("packhouse", "1"), wrong, "generate-lockfile", check=False)
    assert code != 0 and "401" in output, output
    # A public project needs none.
    project.visibility = "public"
    project.save()
    assert cargo.build_and_run(cargo.application("packhouse", "1"), cargo.home(base, {})) == ("HI!", "1.0.0")
