"""Request bodies the real clients send, built in memory: npm publish documents, wheels and
twine's multipart upload form, cargo's publish body. Used by tests and by scripts/bench.py."""

import base64
import gzip
import hashlib
import io
import json
import tarfile
import uuid
import zipfile


def npm_document(name, version, dependencies=None, description="bench", payload=b""):
    """`npm publish`'s body; `payload`: the bytes of an extra `package/data.bin` (a large tarball)."""
    manifest = {"name": name, "version": version, "description": description, "dependencies": dependencies or {}}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        index = b"module.exports = 42;\n"
        info = tarfile.TarInfo("package/index.js")
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
        if payload:
            info = tarfile.TarInfo("package/data.bin")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    tarball = raw.getvalue()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    file_name = f"{name}-{version}.tgz"
    return json.dumps(
        {
            "_id": name,
            "name": name,
            "dist-tags": {"latest": version},
            "versions": {
                version: {
                    **manifest,
                    "dist": {
                        "shasum": hashlib.sha1(tarball).hexdigest(),  # noqa: S324
                        "integrity": integrity,
                        "tarball": f"http://x/{file_name}",
                    },
                }
            },
            "_attachments": {
                file_name: {
                    "content_type": "application/octet-stream",
                    "data": base64.b64encode(tarball).decode(),
                    "length": len(tarball),
                }
            },
        }
    ).encode()


def wheel(name, version, note="", payload=b""):
    """A pure wheel; `payload`: the bytes of an extra member, stored as they are (a large wheel)."""
    dist = name.replace("-", "_")
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: bench\n\n".encode()
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr(f"{dist}/__init__.py", f"VALUE = 1  # {note}\n")
        archive.writestr(f"{dist}-{version}.dist-info/METADATA", metadata)
        archive.writestr(
            f"{dist}-{version}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{dist}-{version}.dist-info/RECORD", "")
        if payload:
            archive.writestr(f"{dist}/data.bin", payload, zipfile.ZIP_STORED)
    return f"{dist}-{version}-py3-none-any.whl", raw.getvalue()


def twine_form(name, version, note="", payload=b""):
    file_name, content = wheel(name, version, note, payload)
    return upload_form(name, version, file_name, content)


def upload_form(name, version, file_name, content):
    """twine's multipart upload of one wheel's bytes: (body, content type)."""
    boundary = uuid.uuid4().hex
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
    }
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{file_name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def crate(name, version, lib_rs="pub fn answer() -> u32 { 42 }\n", members=None):
    """A `.crate` as `cargo package` writes it: a gzipped tar of `<name>-<version>/` holding the
    normalised Cargo.toml and the sources (`members`: {path inside the crate: bytes} instead)."""
    manifest = f'[package]\nedition = "2021"\nname = "{name}"\nversion = "{version}"\n'
    if members is None:
        members = {"Cargo.toml": manifest.encode(), "src/lib.rs": lib_rs.encode()}
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for path, data in members.items():  # the same bytes every time: checksums can be compared
            info = tarfile.TarInfo(path if path.startswith("/") or ".." in path else f"{name}-{version}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def cargo_metadata(name, version, deps=(), features=None, **fields):
    """The JSON metadata `cargo publish` sends before the crate."""
    return {
        "name": name,
        "vers": version,
        "deps": list(deps),
        "features": features or {},
        "authors": [],
        "description": "bench",
        "documentation": None,
        "homepage": None,
        "readme": None,
        "readme_file": None,
        "keywords": [],
        "categories": [],
        "license": "MIT",
        "license_file": None,
        "repository": None,
        "badges": {},
        "links": None,
        "rust_version": None,
        **fields,
    }


def cargo_publish_body(name, version, metadata=None, crate_bytes=None):
    """`cargo publish`'s body: metadata length (u32 LE), metadata JSON, crate length, crate."""
    document = json.dumps(metadata or cargo_metadata(name, version)).encode()
    data = crate(name, version) if crate_bytes is None else crate_bytes
    return b"".join((len(document).to_bytes(4, "little"), document, len(data).to_bytes(4, "little"), data))
