"""The audit trail of one story, told with curl against a live server and read back through
the audit events API, row by row: a Developer publishes, a Maintainer protects the package, the
Developer's next publish is refused (and leaves no row), an Owner deletes the package, the
Developer rotates their token. Secrets never appear in any event."""

import json

import pytest

from accounts.models import AccessToken
from accounts.roles import AccessLevel
from tests.clients.generic.test_curl import curl
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = [pytest.mark.client, pytest.mark.django_db(transaction=True)]


def member(project, level, username):
    user = UserFactory(username=username)
    MembershipFactory(user=user, project=project, access_level=level)
    return user, AccessTokenFactory(user=user, name=f"{username}-token")


def events(live_registry, path, token, *query):
    status, output = curl("-H", f"PRIVATE-TOKEN: {token}", live_registry.api(path) + "?per_page=100" + "".join(query))
    assert status == 200, output
    return json.loads(output)


def test_publish_protect_refuse_delete_rotate(live_registry, tmp_path):
    project = ProjectFactory(group=GroupFactory(path="acme"), path="story")
    developer, dev_token = member(project, AccessLevel.DEVELOPER, "dev")
    maintainer, boss_token = member(project, AccessLevel.MAINTAINER, "boss")
    owner, owner_token = member(project, AccessLevel.OWNER, "chief")
    admin_token = AccessTokenFactory(user=AdminFactory()).plaintext
    artifact = tmp_path / "tool.bin"
    artifact.write_bytes(b"one\n")
    base = live_registry.api(f"projects/{project.pk}/packages")

    status, _ = curl(
        "-H",
        f"PRIVATE-TOKEN: {dev_token.plaintext}",
        "--upload-file",
        str(artifact),
        f"{base}/generic/tool/1.0/tool.bin",
    )
    assert status == 201
    rule = json.dumps(
        {"package_name_pattern": "tool", "package_type": "generic", "minimum_access_level_for_push": "maintainer"}
    )
    status, output = curl(
        "-H", f"PRIVATE-TOKEN: {boss_token.plaintext}", "-H", "Content-Type: application/json", "--data", rule,
        f"{base}/protection/rules",
    )  # fmt: skip
    assert status == 201, output
    rule_id = json.loads(output)["id"]
    status, _ = curl(
        "-H",
        f"PRIVATE-TOKEN: {dev_token.plaintext}",
        "--upload-file",
        str(artifact),
        f"{base}/generic/tool/2.0/tool.bin",
    )
    assert status == 403
    status, output = curl("-H", f"PRIVATE-TOKEN: {owner_token.plaintext}", base)
    version_id = json.loads(output)[0]["id"]
    status, _ = curl("-X", "DELETE", "-H", f"PRIVATE-TOKEN: {owner_token.plaintext}", f"{base}/{version_id}")
    assert status == 204
    rotate = live_registry.api("personal_access_tokens/self/rotate")
    status, output = curl("-X", "POST", "-H", f"PRIVATE-TOKEN: {dev_token.plaintext}", rotate)
    assert status == 200, output
    new_token = json.loads(output)["token"]

    # The project's trail, newest first, as GitLab lists it.
    rows = events(live_registry, f"projects/{project.pk}/audit_events", boss_token.plaintext)
    story = [row for row in rows if row["event_name"] != "member_added"]
    assert [(r["event_name"], r["author_id"], r["details"]["author_class"]) for r in story] == [
        ("package_deleted", owner.pk, "personal"),
        ("package_protection_rule_created", maintainer.pk, "personal"),
        ("package_published", developer.pk, "personal"),
    ]
    deleted, protected, published = story
    for row, token in ((deleted, owner_token), (protected, boss_token), (published, dev_token)):
        assert row["entity_type"] == "Project" and row["entity_id"] == project.pk
        assert row["details"]["entity_path"] == "acme/story"
        assert row["details"]["ip_address"] == "127.0.0.1"
        assert row["details"]["token"] == {"kind": "personal", "id": token.pk, "name": token.name}
    assert published["details"]["target_type"] == "Package"
    assert published["details"]["target_details"] == "tool@1.0"
    assert published["details"]["files"] == [
        {
            "file_name": "tool.bin",
            "sha256": "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806",
            "size": 4,
        }
    ]
    assert deleted["details"]["target_id"] == str(version_id) and deleted["details"]["version"] == "1.0"
    assert protected["details"]["target_id"] == str(rule_id)
    assert protected["details"]["package_name_pattern"] == "tool"
    assert protected["details"]["minimum_access_level_for_push"] == "maintainer"
    # Members were added before the story, by no request: the system did it.
    assert {r["details"]["author_class"] for r in rows if r["event_name"] == "member_added"} == {"system"}

    # The Developer's own trail (their tokens), oldest first.
    mine = events(live_registry, "audit_events", admin_token, f"&entity_type=User&entity_id={developer.pk}")[::-1]
    successor = AccessToken.objects.get(user=developer, revoked=False)
    assert [(r["event_name"], r["details"]["author_class"], r["details"].get("target_id")) for r in mine] == [
        ("personal_access_token_created", "system", str(dev_token.pk)),
        ("token_used_from_new_ip", "personal", str(dev_token.pk)),
        ("personal_access_token_revoked", "personal", str(dev_token.pk)),
        ("personal_access_token_created", "personal", str(successor.pk)),
        ("personal_access_token_rotated", "personal", str(successor.pk)),
    ]
    assert mine[-1]["details"]["from_token_id"] == dev_token.pk
    assert all(r["details"]["ip_address"] == "127.0.0.1" for r in mine[1:])

    everything = json.dumps(events(live_registry, "audit_events", admin_token))
    for secret in (dev_token.plaintext, boss_token.plaintext, owner_token.plaintext, admin_token, new_token):
        assert secret not in everything
    # Nobody may change the trail: there is no such route.
    event_id = rows[0]["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        status, _ = curl(
            "-X", method, "-H", f"PRIVATE-TOKEN: {admin_token}", live_registry.api(f"audit_events/{event_id}")
        )
        assert status == 405, method
