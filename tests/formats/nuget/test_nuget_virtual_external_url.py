"""NuGet virtual registry documents name Packhouse by PACKHOUSE_EXTERNAL_URL when it is set, never
by the request's Host, exactly as the project endpoints do (spec §3.4, security.md §1.10)."""

import json

import pytest

from accounts.roles import AccessLevel
from registry.models import RegistryUpstream, Upstream, VirtualRegistry
from tests.factories import AccessTokenFactory, GroupFactory, ProjectFactory, member
from tests.formats.nuget.nupkg import multipart, nupkg
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

EXTERNAL = "https://packages.example.com"


LINKS = ("@id", "packageContent", "registration")


def urls_in(document):
    """The links of a NuGet v3 document (`@id`, `packageContent`, `registration`), anywhere in it;
    a package's own links (its nuspec's projectUrl, say) are not Packhouse's."""
    found = []

    def walk(value, key=None):
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif key in LINKS and isinstance(value, str):
            found.append(value)

    walk(document)
    return found


def test_documents_use_the_external_url_not_the_host(client, settings):
    settings.ALLOWED_HOSTS = ["*"]
    group = GroupFactory(path="dotnet")
    project = ProjectFactory(group=group, path="libs")
    publisher = auth_headers(AccessTokenFactory(user=member(project, AccessLevel.DEVELOPER)).plaintext)
    body, content_type = multipart(nupkg("Acme.Lib", "1.0.0"))
    published = client.put(
        f"/api/v4/projects/{project.pk}/packages/nuget/", body, content_type=content_type, **publisher
    )
    assert published.status_code == 201, published.content
    registry = VirtualRegistry.objects.create(group=group, format="nuget", name="all")
    local = Upstream.objects.create(group=group, format="nuget", kind="local", name="ours", local_project=project)
    RegistryUpstream.objects.create(registry=registry, upstream=local, position=1)
    reader = auth_headers(AccessTokenFactory(user=member(group, AccessLevel.REPORTER)).plaintext)
    settings.EXTERNAL_URL = EXTERNAL
    prefix = f"{EXTERNAL}/api/v4/virtual_registries/packages/nuget/{registry.pk}"

    project_index = client.get(
        f"/api/v4/projects/{project.pk}/packages/nuget/index.json", HTTP_HOST="evil.example", **reader
    ).json()
    assert all(url.startswith(f"{EXTERNAL}/") for url in urls_in(project_index))

    answers = {}
    for path in ("index.json", "metadata/acme.lib/index.json", "metadata/acme.lib/1.0.0.json", "query?q=acme"):
        response = client.get(
            f"/api/v4/virtual_registries/packages/nuget/{registry.pk}/{path}", HTTP_HOST="evil.example", **reader
        )
        assert response.status_code == 200, (path, response.content)
        answers[path] = json.loads(response.content)
    for path, document in answers.items():
        urls = urls_in(document)
        assert urls, path
        assert [u for u in urls if not u.startswith(f"{prefix}/")] == [], (path, urls)
    resources = {r["@type"]: r["@id"] for r in answers["index.json"]["resources"]}
    assert resources["PackageBaseAddress/3.0.0"] == f"{prefix}/download"
    leaf = answers["metadata/acme.lib/1.0.0.json"]
    assert leaf["packageContent"] == f"{prefix}/download/acme.lib/1.0.0/acme.lib.1.0.0.nupkg"
