"""Tiny distributions built in memory: wheels with zipfile, sdists with tarfile."""

import hashlib
import io
import tarfile
import zipfile


def core_metadata(name, version, requires_python=">=3.8", summary="A tiny package"):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    return ("\n".join(lines) + "\n\nLong description.\n").encode()


def wheel_name(name, version):
    return f"{name.replace('-', '_').replace('.', '_')}-{version}-py3-none-any.whl"


def sdist_name(name, version):
    return f"{name.replace('-', '_').replace('.', '_').lower()}-{version}.tar.gz"


def make_wheel(name, version, metadata=None, extra=()):
    """Wheel bytes; `metadata` overrides METADATA, `extra` is [(member name, bytes)]."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    module = name.replace("-", "_").replace(".", "_").lower()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{module}/__init__.py", f"VERSION = {version!r}\n")
        archive.writestr(f"{dist_info}/METADATA", metadata if metadata is not None else core_metadata(name, version))
        archive.writestr(
            f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{dist_info}/RECORD", "")
        for member, data in extra:
            archive.writestr(member, data)
    return buffer.getvalue()


def make_sdist(name, version, metadata=None, extra=()):
    top = f"{name.replace('-', '_').replace('.', '_').lower()}-{version}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        members = [
            (f"{top}/PKG-INFO", metadata if metadata is not None else core_metadata(name, version)),
            (f"{top}/setup.py", b"from setuptools import setup\nsetup()\n"),
            *extra,
        ]
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data):
    return hashlib.sha256(data).hexdigest()
