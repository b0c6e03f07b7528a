"""Request bodies the real clients send, built in memory: npm publish documents, wheels and
twine's multipart upload form. Used by tests and by scripts/bench.py."""

import base64
import hashlib
import io
import json
import tarfile
import uuid
import zipfile


def npm_document(name, version, dependencies=None, description="bench"):
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


def wheel(name, version, note=""):
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
    return f"{dist}-{version}-py3-none-any.whl", raw.getvalue()


def twine_form(name, version, note=""):
    file_name, content = wheel(name, version, note)
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
