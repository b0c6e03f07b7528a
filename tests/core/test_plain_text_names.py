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
