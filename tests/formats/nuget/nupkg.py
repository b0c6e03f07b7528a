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


def portable_pdb(guid, filler=b"symbols"):
    """A portable PDB's bytes (ECMA-335 metadata root with a #Pdb stream whose first 20 bytes are
    the PDB id: `guid` stored as .NET stores a Guid, then a 4-byte stamp), as the Portable PDB
    spec lays it out; `filler` stands for the tables. Returns (bytes, offset of the PDB id)."""
    import struct

    version = b"PDB v1.0\0\0\0\0"  # padded to 4 bytes
    pdb_stream = guid.bytes_le + b"\x12\x34\x56\x78" + b"\0" * 12  # id, entry point, tables
    names = [b"#Pdb\0\0\0\0", b"#Blob\0\0\0"]
    header_size = 16 + len(version) + 4 + sum(8 + len(name) for name in names)
    pdb_offset = header_size
    blob_offset = pdb_offset + len(pdb_stream)
    header = b"BSJB" + struct.pack("<HHII", 1, 1, 0, len(version)) + version + struct.pack("<HH", 0, len(names))
    header += struct.pack("<II", pdb_offset, len(pdb_stream)) + names[0]
    header += struct.pack("<II", blob_offset, len(filler)) + names[1]
    assert len(header) == header_size
    return header + pdb_stream + filler, pdb_offset
