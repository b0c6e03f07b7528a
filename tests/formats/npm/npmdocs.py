"""Build npm tarballs and `npm publish` documents the way npm 11 does."""

import base64
import hashlib
import io
import json
import tarfile


def tarball(manifest, extra=None, *, members=None):
    """A gzip'd tar with package/package.json (+ extra {path: bytes}); `members` replaces all."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        entries = members
        if entries is None:
            entries = {"package/package.json": json.dumps(manifest).encode(), **(extra or {})}
        for path, data in entries.items():
            if isinstance(data, tarfile.TarInfo):
                archive.addfile(data)
                continue
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def publish_document(name, version, data=None, *, manifest=None, tag="latest", **version_fields):
    """The JSON body of `npm publish` for one version."""
    manifest = manifest or {"name": name, "version": version, **version_fields}
    if data is None:
        data = tarball(manifest, {"package/index.js": b"module.exports = 42;\n"})
    sha512 = base64.b64encode(hashlib.sha512(data).digest()).decode()
    version_doc = {
        **manifest,
        "_id": f"{name}@{version}",
        "dist": {
            "integrity": f"sha512-{sha512}",
            "shasum": hashlib.sha1(data).hexdigest(),
            "tarball": f"http://example.invalid/{name}/-/{name}-{version}.tgz",
        },
    }
    return {
        "_id": name,
        "name": name,
        "description": version_fields.get("description", ""),
        "dist-tags": {tag: version},
        "versions": {version: version_doc},
        "access": None,
        "_attachments": {
            f"{name}-{version}.tgz": {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(data).decode(),
                "length": len(data),
            }
        },
    }
