"""The security issue's npm cases: manifest confusion (the body must agree with the tarball's
package.json on what install reads), one version and one attachment per publish, dist-tags,
and one owner of a name per top-level group."""

import json

import pytest

from accounts.roles import AccessLevel
from registry.models import PackageVersion
from tests.factories import GroupFactory, ProjectFactory
from tests.formats.npm.npmdocs import publish_document, tarball
from tests.formats.npm.test_npm_api import NAME, assert_nothing_stored, escaped, member_headers, prefix, publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def group():
    return GroupFactory(path="acme")


@pytest.fixture
def project(group):
    return ProjectFactory(group=group, path="web")


@pytest.fixture
def developer(project):
    return member_headers(project, AccessLevel.DEVELOPER)


def confused(packed, claimed):
    """A tarball whose package.json has `packed`, in a body that says `claimed`."""
    base = {"name": NAME, "version": "1.0.0"}
    data = tarball({**base, **packed}, {"package/index.js": b"1"})
    return publish_document(NAME, "1.0.0", data, manifest={**base, **claimed})


def refused(response, *words):
    assert response.status_code == 400, response.content
    error = response.json()
    assert set(error) == {"error", "message"}
    for word in words:
        assert word in error["error"], error
    return error["error"]


def test_the_issue_case_is_refused_and_the_packument_never_serves_the_body(client, project, developer, blob_dir):
    document = confused(
        {"dependencies": {"evil-dep": "1.0.0"}, "bin": {"ls": "evil.js"}},
        {"dependencies": {"left-pad": "^1.0.0"}},
    )
    refused(publish(client, project, developer, document), "dependencies", "package.json in the tarball")
    assert_nothing_stored(blob_dir)
    assert client.get(f"{prefix(project)}/{escaped(NAME)}", **developer).status_code == 404


@pytest.mark.parametrize(
    ("packed", "claimed", "field"),
    [
        ({"bin": {"ls": "evil.js"}}, {}, "bin"),
        ({}, {"bin": {"ls": "evil.js"}}, "bin"),
        ({"devDependencies": {"x": "1"}}, {}, "devDependencies"),
        ({"peerDependencies": {"x": "1"}}, {"peerDependencies": {"x": "2"}}, "peerDependencies"),
        ({"optionalDependencies": {"x": "1"}}, {}, "optionalDependencies"),
        ({"peerDependenciesMeta": {"x": {"optional": True}}}, {}, "peerDependenciesMeta"),
        ({"bundleDependencies": ["x"], "dependencies": {"x": "1"}}, {"dependencies": {"x": "1"}}, "bundleDependencies"),  # noqa: E501
        ({"scripts": {"postinstall": "curl evil"}}, {}, "scripts"),
        ({"scripts": {"preinstall": "a"}}, {"scripts": {"preinstall": "b"}}, "scripts"),
        ({"os": ["linux"]}, {"os": ["darwin"]}, "os"),
        ({"cpu": ["x64"]}, {}, "cpu"),
        ({"engines": {"node": ">=99"}}, {"engines": {"node": ">=18"}}, "engines"),
        ({"scripts": {"install": "x"}}, {"scripts": {"install": "x"}, "hasInstallScript": False}, "hasInstallScript"),
        ({}, {"hasInstallScript": True}, "hasInstallScript"),
    ],
)
def test_a_body_that_disagrees_with_the_tarball_is_refused(
    client, project, developer, blob_dir, packed, claimed, field
):
    message = refused(publish(client, project, developer, confused(packed, claimed)), field)
    assert message.startswith(f"{field} in the publish body does not match")
    assert_nothing_stored(blob_dir)


def test_what_npm_11_normalizes_is_accepted(client, project, developer):
    """Captured from npm 11.19 publishing a package.json as written on disk (kept in the tarball)."""
    packed = {
        "bin": "./cli.js",
        "dependencies": {"a": "^1"},
        "optionalDependencies": {"b": "^2"},
        "bundledDependencies": ["a"],
        "scripts": {"test": "x", "postinstall": "node_modules/.bin/foo"},
        "os": ["linux"],
        "directories": {"bin": "./bins"},
    }
    claimed = {
        "bin": {"left-pad": "cli.js"},
        "dependencies": {"a": "^1"},
        "optionalDependencies": {"b": "^2"},
        "scripts": {"test": "x", "postinstall": "foo", "install": "node-gyp rebuild", "start": "node server.js"},
        "os": ["linux"],
        "directories": {"bin": "./bins"},
        "gypfile": True,
        "bundleDependencies": ["a"],
        "_nodeVersion": "20.20.2",
        "_npmVersion": "11.19.1",
    }
    base = {"name": NAME, "version": "1.0.0"}
    data = tarball({**base, **packed}, {"package/binding.gyp": b"{}", "package/server.js": b"1"})
    response = publish(client, project, developer, publish_document(NAME, "1.0.0", data, manifest={**base, **claimed}))
    assert response.status_code == 200, response.content
    metadata = PackageVersion.objects.get().metadata
    assert metadata["bin"] == {"left-pad": "cli.js"}
    assert metadata["hasInstallScript"] is True


def test_a_directories_bin_expansion_is_accepted_only_inside_that_directory(client, project, developer):
    packed = {"name": NAME, "version": "1.0.0", "directories": {"bin": "./bins"}}
    data = tarball(packed, {"package/bins/tool": b"#!/bin/sh\n"})
    ok = publish_document(NAME, "1.0.0", data, manifest={**packed, "bin": {"tool": "bins/tool"}})
    assert publish(client, project, developer, ok).status_code == 200, ok
    bad = publish_document(NAME, "1.0.1", tarball({**packed, "version": "1.0.1"}, {"package/bins/ls": b""}))
    bad["versions"]["1.0.1"]["bin"] = {"ls": "evil.js"}
    refused(publish(client, project, developer, bad), "bin")


def test_a_gyp_install_script_is_only_accepted_with_a_binding_gyp(client, project, developer):
    claimed = {"scripts": {"install": "node-gyp rebuild"}, "gypfile": True}
    refused(publish(client, project, developer, confused({}, claimed)), "scripts")


def test_two_attachments_are_refused(client, project, developer, blob_dir):
    document = publish_document(NAME, "1.0.0")
    other = publish_document(NAME, "1.0.1")
    document["_attachments"].update(other["_attachments"])
    refused(publish(client, project, developer, document), "attachment")
    assert_nothing_stored(blob_dir)


def test_more_than_one_version_is_refused(client, project, developer, blob_dir):
    document = publish_document(NAME, "1.0.0")
    document["versions"]["2.0.0"] = publish_document(NAME, "2.0.0")["versions"]["2.0.0"]
    refused(publish(client, project, developer, document), "2.0.0")
    assert_nothing_stored(blob_dir)


@pytest.mark.parametrize("tags", [{"latest": "1.0.0", "old": "0.0.1"}, {"latest": "9.9.9"}, {"latest": 1}])
def test_dist_tags_must_point_at_the_version_published(client, project, developer, blob_dir, tags):
    document = publish_document(NAME, "1.0.0")
    document["dist-tags"] = tags
    refused(publish(client, project, developer, document), "dist-tags")
    assert_nothing_stored(blob_dir)


@pytest.mark.parametrize("tag", ["1.0", "v1.0", "1", "v1", "1.0.0", "1.x", "=1.0"])
def test_dist_tags_named_like_versions_are_refused_in_a_publish(client, project, developer, blob_dir, tag):
    document = publish_document(NAME, "1.0.0")
    document["dist-tags"] = {tag: "1.0.0"}
    refused(publish(client, project, developer, document), "Tag")
    assert_nothing_stored(blob_dir)


@pytest.mark.parametrize("tag", ["1.0", "v1.0", "1", "V2", "1.x"])
def test_dist_tags_named_like_versions_are_refused_by_the_dist_tag_endpoint(client, project, developer, tag):
    assert publish(client, project, developer, publish_document(NAME, "1.0.0")).status_code == 200
    url = f"{prefix(project)}/-/package/{escaped(NAME)}/dist-tags/{tag}"
    response = client.put(url, data=json.dumps("1.0.0"), content_type="application/json", **developer)
    refused(response, "Tag")
    ok = client.put(f"{prefix(project)}/-/package/{escaped(NAME)}/dist-tags/v1beta", data=json.dumps("1.0.0"),
                    content_type="application/json", **developer)  # fmt: skip
    assert ok.status_code == 204


def test_a_name_held_by_another_project_of_the_top_level_group_is_403(client, group, project, developer):
    assert publish(client, project, developer, publish_document(NAME, "1.0.0")).status_code == 200
    tmp = ProjectFactory(group=GroupFactory(path="tmp", parent=group), path="tmp")
    response = publish(client, tmp, member_headers(tmp, AccessLevel.DEVELOPER), publish_document(NAME, "9.0.0"))
    assert response.status_code == 403, response.content
    assert response.json()["error"] == (
        f"Package already exists: {NAME} is published by another project of the acme group."
    )
    assert list(PackageVersion.objects.values_list("version", flat=True)) == ["1.0.0"]
    latest = client.get(f"/api/v4/packages/npm/{escaped(NAME)}", **developer).json()["dist-tags"]["latest"]
    assert latest == "1.0.0"
    # the holder keeps publishing; other names, and the same name in another group, are fine
    assert publish(client, project, developer, publish_document(NAME, "1.1.0")).status_code == 200
    tmp_dev = member_headers(tmp, AccessLevel.DEVELOPER)
    other = publish_document("@acme/other", "1.0.0")
    assert publish(client, tmp, tmp_dev, other, name="@acme/other").status_code == 200
    elsewhere = ProjectFactory(group=GroupFactory(path="beta"), path="x")
    assert publish(client, elsewhere, member_headers(elsewhere, AccessLevel.DEVELOPER),
                   publish_document(NAME, "1.0.0")).status_code == 200  # fmt: skip


@pytest.mark.parametrize("name", ["@acme/left~pad", "node_modules", "@acme/favicon.ico"])
def test_names_npm_no_longer_accepts_for_new_packages_are_refused(client, project, developer, blob_dir, name):
    refused(publish(client, project, developer, publish_document(name, "1.0.0"), name=name), "name")
    assert_nothing_stored(blob_dir)
    assert not PackageVersion.objects.exists()
