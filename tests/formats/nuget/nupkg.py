"""Build small .nupkg files for tests: a nuspec and a dummy lib/net45/a.dll in a zip."""

import io
import zipfile

from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

NUSPEC = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>{id}</id>
    <version>{version}</version>
    <authors>{authors}</authors>
    <description>{description}</description>
    <summary>A summary</summary>
    <tags>alpha beta</tags>
    <projectUrl>https://example.com/project</projectUrl>
    <dependencies>
      <group targetFramework=".NETFramework4.5">
        <dependency id="Newtonsoft.Json" version="[12.0.1, )" />
      </group>
      <group targetFramework=".NETStandard2.0" />
    </dependencies>
  </metadata>
</package>
"""


def nuspec(package_id="Acme.Tools", version="1.2.3", authors="Acme", description="Tools for Acme"):
    return NUSPEC.format(id=package_id, version=version, authors=authors, description=description)


def nupkg(package_id="Acme.Tools", version="1.2.3", spec=None, extra=(), nuspec_name=None, **kwargs):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(nuspec_name or f"{package_id}.nuspec", spec or nuspec(package_id, version, **kwargs))
        archive.writestr("lib/net45/a.dll", b"MZ" + b"\0" * 64)
        for name, data in extra:
            archive.writestr(name, data)
    return buffer.getvalue()


def multipart(data, file_name="package.nupkg", field="package"):
    part = io.BytesIO(data)
    part.name = file_name
    return encode_multipart(BOUNDARY, {field: part}), MULTIPART_CONTENT
