"""pnpm and yarn configured for the group endpoint only: the group packument links tarballs
below the group endpoint, so these path-scoped clients send their token with every tarball
request and install (GitLab's issue 352962, pnpm's issue 3001)."""

import json
import os
import subprocess

import pytest

from tests.clients.npm.test_npm_cli import INDEX_JS, NAME, Npm, installed
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]

PNPM, YARN = "pnpm@12.4.2", "yarn@1.22.22"


@pytest.fixture(scope="session")
def tools(tmp_path_factory):
    """pnpm and yarn (classic) installed from the npm registry with the real npm (once)."""
    prefix = tmp_path_factory.mktemp("pnpm-yarn")
    subprocess.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), PNPM, YARN],
        check=True, capture_output=True, timeout=600,
        env={**os.environ, "HOME": str(prefix), "npm_config_cache": str(prefix / "cache")},
    )  # fmt: skip
    return prefix / "node_modules" / ".bin"


@pytest.fixture
def published(tmp_path, live_registry):
    group = GroupFactory(path="acme")
    project = ProjectFactory(group=group, path="web")
    user = UserFactory(username="dev")
    MembershipFactory(user=user, project=project, access_level=30)
    token = AccessTokenFactory(user=user).plaintext
    npm = Npm(tmp_path, live_registry)
    npm.run(npm.package("1.0.0", f"projects/{project.pk}", token), "publish")
    return npm, group, token


def run(tool, cwd, npm, *args):
    result = subprocess.run(
        [str(tool), *args], cwd=cwd, env=npm.env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{tool.name} {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("client", ["pnpm", "yarn"])
def test_path_scoped_clients_install_from_the_group_endpoint(tools, published, client):
    npm, group, token = published
    app = npm.consumer(f"groups/{group.pk}/-", token, {NAME: "^1.0.0"})  # token for the group path only
    if client == "pnpm":
        run(tools / "pnpm", app, npm, "install", "--store-dir", str(app / "store"), "--config.node-linker=hoisted")
    else:
        run(tools / "yarn", app, npm, "install", "--cache-folder", str(app / "yarn-cache"), "--no-progress")
        lock = (app / "yarn.lock").read_text()
        assert f"/api/v4/groups/{group.pk}/-/packages/npm/{NAME}/-/" in lock
    assert installed(app) == ("1.0.0", INDEX_JS)
    assert json.loads((app / "package.json").read_text())["dependencies"] == {NAME: "^1.0.0"}
