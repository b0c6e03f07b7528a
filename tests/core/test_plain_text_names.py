"""Names, versions and file names are printable ASCII in every format (registry.services): a
control character would split log lines, look-alike letters and non-ASCII digits impersonate."""

import pytest

from registry import formats, services
from registry.errors import Invalid
from registry.formats import FileDraft, PackageDraft
from registry.models import Package
from registry.spool import spool_bytes
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

HOSTILE = ["tool\n", "to\x00ol", "too\tl", "1.0.\uff10", "\u0661.\u0660", "pac\u212aage", "tool\u202e"]


@pytest.mark.parametrize("fmt", [fmt.name for fmt in formats.all_formats()])
@pytest.mark.parametrize("field", ["name", "version", "file_name"])
@pytest.mark.parametrize("value", HOSTILE)
def test_every_format_refuses_non_plain_text(fmt, field, value):
    project = ProjectFactory()
    values = {"name": "tool", "version": "1.0.0", "file_name": "tool-1.0.0.bin", field: value}
    with spool_bytes(b"bytes") as spool:
        draft = PackageDraft(values["name"], values["version"], files=[FileDraft(values["file_name"], spool)])
        with pytest.raises(Invalid):
            services.publish(project, None, formats.get(fmt), draft)
    assert not Package.objects.filter(project=project).exists()


def test_a_file_name_over_255_characters_is_refused(client):
    from tests.factories import AccessTokenFactory, MembershipFactory
    from tests.helpers import auth_headers

    project = ProjectFactory()
    token = AccessTokenFactory(user=MembershipFactory(project=project, access_level=30).user)
    base = f"/api/v4/projects/{project.pk}/packages/generic/tool/1.0.0"
    headers = auth_headers(token.plaintext)
    put = client.put(f"{base}/{'x' * 300}", data=b"x", content_type="application/octet-stream", **headers)
    assert put.status_code == 400
    for path in ("tool%0A/1.0.0/a.bin", "tool/1.0.%EF%BC%90/a.bin", "tool./1.0.0/a.bin", "tool/1.0.0/a.bin."):
        url = f"/api/v4/projects/{project.pk}/packages/generic/{path}"
        assert client.put(url, data=b"x", content_type="application/octet-stream", **headers).status_code == 400
    assert not Package.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v4/projects/acme%00tools/packages/generic/tool/1.0.0/tool.bin",
        "/api/v4/projects/{pk}/packages/maven/%00/%0A",
        "/api/v4/groups/acme%00/-/packages/maven/a/b/1.0/b-1.0.jar",
    ],
)
def test_a_control_character_in_a_project_or_group_reference_is_a_miss_not_an_error(client, url):
    from tests.factories import AccessTokenFactory, MembershipFactory
    from tests.helpers import auth_headers

    project = ProjectFactory()
    token = AccessTokenFactory(user=MembershipFactory(project=project, access_level=30).user)
    response = client.put(
        url.format(pk=project.pk), data=b"x", content_type="application/octet-stream", **auth_headers(token.plaintext)
    )
    assert response.status_code in (400, 404, 405)
