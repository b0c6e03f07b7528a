"""The format contract as the core applies it: the write service validates every draft's name and
version through the format and hands `save_format_rows` the stored files; every format app
registers through registry.apps.FormatAppConfig; multipart bodies are spooled by one helper."""

import hashlib
import os

import pytest
from django.apps import apps

from accounts.authentication import principal_for_token
from registry import formats, routes, services
from registry.apps import FormatAppConfig
from registry.errors import Invalid, TooLarge
from registry.formats import FileDraft, PackageDraft, PackageFormat
from registry.models import Blob, Package, PackageFile
from registry.spool import SpoolUploadHandler, spool_bytes, spool_multipart
from tests.factories import AccessTokenFactory, AdminFactory, ProjectFactory
from tests.helpers import stored_objects


@pytest.fixture
def admin():
    return principal_for_token(AccessTokenFactory(user=AdminFactory()).plaintext)


class RecordingFormat(PackageFormat):
    """A format with strict names and versions that records what the service hands it."""

    name = "generic"

    def __init__(self):
        self.saved = []

    def validate_name(self, name):
        if not name.startswith("ok-"):
            raise Invalid("400 Bad request - the name must start with ok-")

    def validate_version(self, version):
        if not version.isdigit():
            raise Invalid("400 Bad request - the version must be a number")

    def save_format_rows(self, version, draft, files):
        self.saved.append((version, draft, files))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("bad", "1", "400 Bad request - the name must start with ok-"),
        ("ok-name", "1.0", "400 Bad request - the version must be a number"),
    ],
)
def test_publish_validates_name_and_version_through_the_format(admin, blob_dir, name, version, message):
    fmt = RecordingFormat()
    with spool_bytes(b"content") as spool, pytest.raises(Invalid) as refused:
        services.publish(ProjectFactory(), admin, fmt, PackageDraft(name, version, files=[FileDraft("f", spool)]))
    assert refused.value.message == message
    assert (Package.objects.count(), Blob.objects.count(), stored_objects(blob_dir), fmt.saved) == (0, 0, [], [])


@pytest.mark.django_db
def test_save_format_rows_receives_the_stored_files_in_draft_order(admin):
    fmt = RecordingFormat()
    with spool_bytes(b"one") as first, spool_bytes(b"two") as second:
        draft = PackageDraft("ok-pkg", "1", files=[FileDraft("b.bin", first), FileDraft("a.bin", second)])
        version, files = services.publish(ProjectFactory(), admin, fmt, draft)
    [(saved_version, saved_draft, saved_files)] = fmt.saved
    assert saved_version == version and saved_draft is draft and saved_files == files
    assert [(f.file_name, f.blob.sha256) for f in saved_files] == [
        ("b.bin", hashlib.sha256(b"one").hexdigest()),
        ("a.bin", hashlib.sha256(b"two").hexdigest()),
    ]
    assert all(isinstance(f, PackageFile) and f.pk for f in saved_files)


def test_every_format_app_registers_its_format_through_format_app_config():
    registered = formats.all_formats()
    for fmt in registered:
        assert isinstance(apps.get_containing_app_config(type(fmt).__module__), FormatAppConfig), fmt.name
    format_apps = [config for config in apps.get_app_configs() if isinstance(config, FormatAppConfig)]
    assert sorted(config.format_class for config in format_apps) == sorted(
        f"{type(fmt).__module__}.{type(fmt).__name__}" for fmt in registered
    )


def _multipart(parts, boundary="xyzzy"):
    body = b""
    for field, file_name, data in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{file_name}"' if file_name is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _spool_files(settings):
    return set(os.listdir(settings.SPOOL_DIR)) if os.path.isdir(settings.SPOOL_DIR) else set()


def test_multipart_file_parts_are_spooled_hashed_and_cleaned_up(settings):
    before = _spool_files(settings)
    body, content_type = _multipart(
        [("note", None, b"a field"), ("package", "dir/x.bin", b"x" * 10), ("other", "y", b"y")]
    )
    with spool_bytes(body) as spooled:
        uploads = spool_multipart(spooled, content_type, max_size=10)
    assert [(p.field_name, p.file_name, p.spool.size) for p in uploads.parts] == [
        ("package", "x.bin", 10),
        ("other", "y", 1),
    ]
    kept = uploads.keep(uploads.parts[0])
    assert kept.spool.sha256 == hashlib.sha256(b"x" * 10).hexdigest()
    assert uploads.parts == [kept] and len(_spool_files(settings) - before) == 1
    uploads.discard()
    assert _spool_files(settings) == before


def test_a_multipart_file_part_over_the_cap_is_too_large_and_leaves_nothing(settings):
    before = _spool_files(settings)
    body, content_type = _multipart([("first", "a", b"a"), ("package", "x.bin", b"x" * 11)])
    with spool_bytes(body) as spooled, pytest.raises(TooLarge):
        spool_multipart(spooled, content_type, max_size=10)
    assert _spool_files(settings) == before


def test_a_malformed_multipart_body_is_invalid(settings):
    with spool_bytes(b"--xyzzy\r\nnot a header line\r\n") as spooled, pytest.raises(Invalid):
        spool_multipart(spooled, "multipart/form-data; boundary=", max_size=10)


def test_the_upload_handler_puts_nothing_in_request_files():
    handler = SpoolUploadHandler(max_size=0)
    handler.new_file("content", "f.whl", "application/octet-stream", None)
    handler.receive_data_chunk(b"abc", 0)
    assert handler.file_complete(3) is None
    [part] = handler.parts
    assert (part.field_name, part.file_name, part.spool.read()) == ("content", "f.whl", b"abc")
    handler.discard()
    assert not os.path.exists(part.spool.path)


def test_renderers_are_pure():
    """A format's renderers.py builds documents from rows it is given: it imports no models and
    runs no query (the reads live in the view or the app's queries.py)."""
    import ast
    from pathlib import Path

    checked = 0
    for fmt in formats.all_formats():
        app = apps.get_containing_app_config(type(fmt).__module__)
        path = Path(app.path) / "renderers.py"
        if not path.exists():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").endswith("models"), f"{path}: imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(alias.name.endswith("models") for alias in node.names), f"{path}: imports models"
            if isinstance(node, ast.Attribute):
                assert node.attr != "objects", f"{path}:{node.lineno}: runs a query"
        checked += 1
    assert checked >= 2


def test_a_format_is_mounted_under_its_name_unless_it_names_a_url_segment():
    class Named(PackageFormat):
        name = "named"

    class Segmented(PackageFormat):
        name = "long-name"
        url_segment = "short"

    project = ProjectFactory.build(pk=7)
    assert Named().packages_url("http://x", project) == "http://x/api/v4/projects/7/packages/named"
    assert Segmented().packages_url("http://x", project) == "http://x/api/v4/projects/7/packages/short"
    mounted = {str(pattern.pattern) for pattern in routes.format_patterns()}
    for fmt in formats.all_formats():
        assert f"api/v4/projects/<ref:project_ref>/packages/{fmt.mount}/" in mounted
