"""Protection rules on the pages: the package settings page lists, adds, edits and deletes them
(Maintainer+, CSRF like every form); package lists and a version's page mark protected packages,
and a delete the rule forbids shows no button."""

import pytest
from django.test import Client

from accounts.roles import AccessLevel
from registry.models import ProtectionRule
from tests.factories import AccessTokenFactory, GroupFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

SETTINGS = "/acme/tools/-/settings/packages_and_registries"


@pytest.fixture
def project():
    return ProjectFactory(group=GroupFactory(path="acme"), path="tools")


def signed_in(project, level):
    user = UserFactory()
    MembershipFactory(user=user, project=project, access_level=level)
    client = Client()
    client.force_login(user)
    return client, user


def test_maintainer_adds_edits_and_deletes_a_rule(project):
    client, _ = signed_in(project, AccessLevel.MAINTAINER)
    page = client.get(SETTINGS).content.decode()
    assert "No package is protected." in page
    for fmt in ("generic", "maven", "npm", "nuget", "pypi"):
        assert f'<option value="{fmt}"' in page

    form = {"package_type": "npm", "package_name_pattern": "@acme/*", "minimum_access_level_for_push": "maintainer"}
    assert (
        client.post(f"{SETTINGS}/protection_rules", {**form, "minimum_access_level_for_delete": ""}).status_code == 302
    )
    rule = ProtectionRule.objects.get()
    assert (rule.package_type, rule.package_name_pattern, rule.minimum_access_level_for_push) == ("npm", "@acme/*", 40)
    page = client.get(SETTINGS).content.decode()
    assert "<code>@acme/*</code>" in page

    taken = client.post(f"{SETTINGS}/protection_rules", form)
    assert taken.status_code == 400
    assert "Package name pattern has already been taken" in taken.content.decode()
    neither = client.post(
        f"{SETTINGS}/protection_rules", {**form, "package_name_pattern": "x", "minimum_access_level_for_push": ""}
    )
    assert neither.status_code == 400
    assert "minimum access role" in neither.content.decode()
    assert ProtectionRule.objects.count() == 1

    edit = f"{SETTINGS}/protection_rules/{rule.pk}"
    assert 'value="@acme/*"' in client.get(edit).content.decode()
    saved = client.post(edit, {**form, "minimum_access_level_for_push": "", "minimum_access_level_for_delete": "owner"})
    assert saved.status_code == 302
    rule.refresh_from_db()
    assert (rule.minimum_access_level_for_push, rule.minimum_access_level_for_delete) == (None, AccessLevel.OWNER)

    assert client.post(f"{edit}/delete").status_code == 302
    assert not ProtectionRule.objects.exists()


def test_only_maintainers_reach_the_rules_and_posts_need_csrf(project):
    rule = ProtectionRule.objects.create(
        project=project, package_type="npm", package_name_pattern="a", minimum_access_level_for_push=50
    )
    developer, _ = signed_in(project, AccessLevel.DEVELOPER)
    assert developer.get(f"{SETTINGS}/protection_rules/{rule.pk}").status_code == 403
    assert developer.post(f"{SETTINGS}/protection_rules/{rule.pk}/delete").status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(signed_in(project, AccessLevel.MAINTAINER)[1])
    assert strict.post(f"{SETTINGS}/protection_rules/{rule.pk}/delete").status_code == 403
    assert ProtectionRule.objects.filter(pk=rule.pk).exists()


def test_lists_and_version_pages_mark_protected_packages(client, project):
    token = AccessTokenFactory(user=UserFactory())
    MembershipFactory(user=token.user, project=project, access_level=AccessLevel.MAINTAINER)
    headers = auth_headers(token.plaintext)
    for name in ("kept", "free"):
        url = f"/api/v4/projects/{project.pk}/packages/generic/{name}/1.0/{name}.bin"
        assert client.put(url, data=b"x", content_type="text/plain", **headers).status_code == 201
    ProtectionRule.objects.create(
        project=project, package_type="generic", package_name_pattern="ke*", minimum_access_level_for_delete=50
    )
    maintainer = Client()
    maintainer.force_login(token.user)
    rows = {
        row.split("</td>")[0]
        for row in maintainer.get("/acme/tools/-/packages").content.decode().split("<tr>\n      <td>")[1:]
    }
    assert any('>kept</a> <span class="badge"' in row and "protected" in row for row in rows)
    assert any(">free</a>" in row and "protected" not in row for row in rows)
    group_page = maintainer.get("/groups/acme/-/packages").content.decode()
    assert "protected</span>" in group_page

    from registry.models import PackageVersion

    kept = PackageVersion.objects.get(package__name="kept")
    free = PackageVersion.objects.get(package__name="free")
    kept_page = maintainer.get(f"/acme/tools/-/packages/{kept.pk}").content.decode()
    assert "protected</span>" in kept_page
    assert f"/acme/tools/-/packages/{kept.pk}/delete" not in kept_page  # below the owner delete level
    free_page = maintainer.get(f"/acme/tools/-/packages/{free.pk}").content.decode()
    assert f"/acme/tools/-/packages/{free.pk}/delete" in free_page
