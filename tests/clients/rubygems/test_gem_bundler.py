"""Debian's `ruby`, `gem` (RubyGems 3.3) and `bundler` (2.3) against a live gunicorn: `gem build`,
`gem push` with every kind of token, `gem install` (compact index and quick specs), `gem search`
(the legacy `specs.4.8.gz` files), `bundle install` from a Gemfile, `gem yank`, and the refusals.

Each run has a private HOME, GEM_HOME and spec cache; nothing reaches rubygems.org.
"""

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageVersion
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

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def ruby():
    """Install Debian's ruby and bundler when missing."""
    if not (shutil.which("gem") and shutil.which("bundle")):
        result = subprocess.run(
            ["sh", str(ROOT / "scripts/install-ruby.sh")], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"scripts/install-ruby.sh failed:\n{result.stdout}\n{result.stderr}")


class Gems:
    def __init__(self, tmp_path, registry):
        self.tmp_path = tmp_path
        self.registry = registry
        self.count = 0

    def source(self, project, user=None, token=None):
        url = self.registry.api(f"projects/{project.pk}/packages/rubygems")
        if token is None:
            return url
        scheme, rest = url.split("://", 1)
        # percent-encoded: `gem` reads a `+` in userinfo (a deploy token's user name) as a space
        return f"{scheme}://{quote(user, safe='')}:{quote(token, safe='')}@{rest}"

    def env(self, **extra):
        self.count += 1
        home = self.tmp_path / f"home-{self.count}"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GEM_", "BUNDLE_", "RUBY"))}
        env.update(
            {
                "HOME": str(home),
                "GEM_HOME": str(home / "gems"),
                "GEM_PATH": str(home / "gems"),
                "GEM_SPEC_CACHE": str(home / "specs"),
                "BUNDLE_USER_HOME": str(home / "bundle"),
                **extra,
            }
        )
        return env

    def run(self, env, *args, cwd=None, check=True):
        result = subprocess.run(
            list(args), cwd=cwd or self.tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{output}")
        return result.returncode, output

    def build(self, name, version, body, dependency=None):
        """`gem build`: the path of `<name>-<version>.gem`."""
        self.count += 1
        directory = self.tmp_path / f"src-{name}-{version}-{self.count}"
        (directory / "lib").mkdir(parents=True)
        module = name.capitalize()
        (directory / "lib" / f"{name}.rb").write_text(f'module {module}; def self.hi; "{body}"; end; end\n')
        dep = f'  s.add_runtime_dependency "{dependency[0]}", "{dependency[1]}"\n' if dependency else ""
        (directory / f"{name}.gemspec").write_text(
            "Gem::Specification.new do |s|\n"
            f'  s.name = "{name}"\n  s.version = "{version}"\n  s.summary = "{name}"\n'
            f'  s.authors = ["Dev"]\n  s.license = "MIT"\n  s.files = ["lib/{name}.rb"]\n{dep}end\n'
        )
        self.run(self.env(), "gem", "build", f"{name}.gemspec", cwd=directory)
        return directory / f"{name}-{version}.gem"

    def push(self, gem, project, token, check=True):
        env = self.env(GEM_HOST_API_KEY=token)
        return self.run(env, "gem", "push", str(gem), "--host", self.source(project), check=check)

    def install(self, source, *names, check=True):
        """`gem install` into a fresh GEM_HOME; the env (to run the installed gems) and output."""
        env = self.env()
        code, output = self.run(
            env, "gem", "install", *names, "--clear-sources", "--source", source, "--no-document", check=check
        )
        return env, code, output

    def ruby_says(self, env, name):
        module = name.capitalize()
        return self.run(env, "ruby", "-e", f'require "{name}"; print {module}.hi')[1]


@pytest.fixture
def gems(tmp_path, live_registry, ruby):
    return Gems(tmp_path, live_registry)


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="rb")


@pytest.fixture
def developer(project):
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=AccessLevel.DEVELOPER)
    return user


@pytest.mark.parametrize("kind", ["personal", "project", "group", "deploy", "job"])
def test_push_with_each_token_then_gem_install_and_bundle_install(gems, project, developer, kind):
    user, token = credential(kind, project, developer)
    _, output = gems.push(gems.build("base", "1.0.0", "base"), project, token)
    assert "Successfully registered gem: base (1.0.0)" in output
    gems.push(gems.build("hola", "0.1.0", f"hola {kind}", dependency=("base", ">= 1.0")), project, token)
    assert PackageVersion.objects.get(package__name="hola").created_via == kind

    source = gems.source(project, user, token)
    env, _, output = gems.install(source, "hola")
    assert "Successfully installed base-1.0.0" in output and "Successfully installed hola-0.1.0" in output
    assert gems.ruby_says(env, "hola") == f"hola {kind}"

    # Bundler, from a Gemfile naming the project as its source.
    app = gems.tmp_path / f"app-{kind}"
    app.mkdir()
    (app / "Gemfile").write_text(f'source "{source}"\ngem "hola", "~> 0.1"\n')
    env = gems.env(BUNDLE_PATH=str(app / "vendor"))
    gems.run(env, "bundle", "install", cwd=app)
    assert "hola (0.1.0)" in (app / "Gemfile.lock").read_text()
    _, said = gems.run(env, "bundle", "exec", "ruby", "-e", 'require "hola"; print Hola.hi', cwd=app)
    assert said.strip().endswith(f"hola {kind}")


def test_search_versions_prereleases_and_yank(gems, project, developer):
    maintainer = UserFactory(username="boss")
    MembershipFactory(user=maintainer, project=project, access_level=AccessLevel.MAINTAINER)
    dev_token = AccessTokenFactory(user=developer).plaintext
    boss_token = AccessTokenFactory(user=maintainer).plaintext
    for version, body in (("0.1.0", "one"), ("0.2.0", "two"), ("0.3.0.pre", "pre")):
        gems.push(gems.build("hola", version, body), project, dev_token)
    source = gems.source(project, "dev", dev_token)

    env = gems.env()
    _, output = gems.run(env, "gem", "search", "hola", "--remote", "--all", "--clear-sources", "--source", source)
    assert "hola (0.2.0, 0.1.0)" in output  # specs.4.8.gz
    _, output = gems.run(
        env, "gem", "search", "hola", "--remote", "--prerelease", "--clear-sources", "--source", source
    )
    assert "hola (0.3.0.pre)" in output  # prerelease_specs.4.8.gz
    env, _, _ = gems.install(source, "hola")
    assert gems.ruby_says(env, "hola") == "two"

    host = gems.source(project)
    code, output = gems.run(
        gems.env(GEM_HOST_API_KEY=dev_token), "gem", "yank", "hola", "-v", "0.2.0", "--host", host, check=False
    )
    assert "403" in output or "Forbidden" in output, output  # a Developer may not yank
    _, output = gems.run(gems.env(GEM_HOST_API_KEY=boss_token), "gem", "yank", "hola", "-v", "0.2.0", "--host", host)
    assert "Successfully yanked gem: hola (0.2.0)" in output
    withdrawals = PackageVersion.objects.get(version="0.2.0").metadata["withdrawals"]  # set_withdrawn's record
    assert [(entry["action"], entry["by"]) for entry in withdrawals] == [("yank", "boss")]
    env, _, _ = gems.install(source, "hola")
    assert gems.ruby_says(env, "hola") == "one"  # the yanked version is gone from every index
    _, code, output = gems.install(source, "hola:0.2.0", check=False)
    assert code != 0 and "Could not find a valid gem 'hola' (= 0.2.0)" in output, output
    code, output = gems.push(gems.build("hola", "0.2.0", "again"), project, dev_token, check=False)
    assert "Repushing of gem versions is not allowed" in output, output


def test_refusals(gems, project, developer):
    gem = gems.build("hola", "0.1.0", "hola")
    _, output = gems.push(gem, project, "glpat-not-a-token", check=False)
    assert "401" in output or "Unauthorized" in output, output
    read_only = DeployTokenFactory(project=project, scopes=["read_package_registry"]).plaintext
    _, output = gems.push(gem, project, read_only, check=False)
    assert "403" in output or "Forbidden" in output, output
    assert not PackageVersion.objects.exists()

    gems.push(gem, project, AccessTokenFactory(user=developer).plaintext)
    _, code, output = gems.install(gems.source(project), "hola", check=False)
    assert code != 0, output  # anonymous, private project
    _, code, output = gems.install(gems.source(project, "dev", "glpat-wrong"), "hola", check=False)
    assert code != 0 and "401" in output, output
    project.visibility = "public"
    project.save()
    env, _, _ = gems.install(gems.source(project), "hola")
    assert gems.ruby_says(env, "hola") == "hola"
