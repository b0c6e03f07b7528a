"""All package writes, one transaction each. The duplicate rules live here and only here."""

import logging

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.principals import DEPLOY_TOKEN, JOB_TOKEN
from registry import epochs, formats
from registry.errors import Invalid
from registry.formats import DuplicateRule
from registry.models import (
    INSTALLABLE,
    DuplicateSetting,
    Package,
    PackageFile,
    PackageVersion,
    Status,
)
from registry.storage import BlobStore, storage_guard

logger = logging.getLogger(__name__)


def duplicate_settings(project):
    """{format name: DuplicateSetting} for every format with a duplicate setting, in name order;
    an unsaved default row where the project has none."""
    rows = {row.format: row for row in DuplicateSetting.objects.filter(project=project)}
    return {
        fmt.name: rows.get(fmt.name) or DuplicateSetting(project=project, format=fmt.name)
        for fmt in formats.with_duplicate_setting()
    }


def save_duplicate_settings(project, changes):
    """Apply {format name: {"allowed": bool, "exception_regex": str}} (either key may be
    missing: left as it is) to the project's duplicate settings, in one transaction."""
    known = {fmt.name for fmt in formats.with_duplicate_setting()}
    with transaction.atomic():
        for format_name, values in changes.items():
            if format_name not in known:
                raise ValueError(f"no duplicate setting for format {format_name!r}")
            if not values:
                continue
            row, _ = DuplicateSetting.objects.select_for_update().get_or_create(project=project, format=format_name)
            for field, value in values.items():
                if field not in ("allowed", "exception_regex"):
                    raise ValueError(f"unknown duplicate setting field {field!r}")
                setattr(row, field, value)
            row.save()
    return duplicate_settings(project)


def _get_or_create_package(project, fmt, name):
    normalized = fmt.normalize_name(name)
    lookup = {"project": project, "format": fmt.name, "normalized_name": normalized}
    package = Package.objects.filter(**lookup).first()
    if package is None:
        try:
            with transaction.atomic():
                package = Package.objects.create(name=name, **lookup)
        except IntegrityError:  # created concurrently: use theirs
            package = Package.objects.get(**lookup)
    # Serialise every write to this package until the transaction ends.
    return Package.objects.select_for_update().get(pk=package.pk)


def _live_version(package, normalized_version):
    return (
        PackageVersion.objects.filter(package=package, normalized_version=normalized_version)
        .exclude(status=Status.PENDING_DESTRUCTION)
        .first()
    )


def _check_duplicate(project, fmt, version, draft):
    rule = fmt.duplicate_rule_for(draft)
    if rule is DuplicateRule.ALLOW:
        return
    if rule is DuplicateRule.REJECT_VERSION:
        raise fmt.duplicate_error()
    names = [f.file_name for f in draft.files]
    exists = version.files.filter(file_name__in=names, status=PackageFile.FileStatus.DEFAULT).exists()
    if not exists:
        return
    if rule is DuplicateRule.REJECT_FILE:
        raise fmt.duplicate_error()
    setting = DuplicateSetting.objects.filter(project=project, format=fmt.name).first()
    if setting is not None and not setting.allows(draft.name, draft.version):
        raise fmt.duplicate_error()


def _provenance(principal):
    return {
        "creator": principal.user if principal.kind != DEPLOY_TOKEN else None,
        "created_via": principal.token_kind,
        "deploy_token": principal.deploy_token if principal.kind == DEPLOY_TOKEN else None,
        "ci_job": principal.job if principal.kind == JOB_TOKEN else None,
    }


MAX_FILE_NAME = 255  # characters in a file name (each segment of a path), as on every filesystem


def require_plain_text(value, what):
    """Names, versions and file names are printable ASCII in every format: no control character
    (a newline would split log lines), no look-alike letters or non-ASCII digits."""
    if not isinstance(value, str) or not value.isascii() or not value.isprintable():
        raise Invalid(f"400 Bad request - {what} is invalid")


def publish(project, principal, fmt, draft, store=None):
    """Store a parsed draft: package, version, files and the format's own rows, atomically.

    The format validates the name and the version first (registry.errors.Invalid: a 400 in the
    client's own shape, nothing written). Returns (version, files). Objects uploaded for a
    transaction that rolls back are deleted.
    """
    require_plain_text(draft.name, "package_name")
    require_plain_text(draft.version, "package_version")
    for file_draft in draft.files:
        require_plain_text(file_draft.file_name, "file_name")
        if any(len(segment) > MAX_FILE_NAME for segment in file_draft.file_name.split("/")):
            raise Invalid("400 Bad request - file_name is too long")
    fmt.validate_name(draft.name)
    fmt.validate_version(draft.version)
    store = store or BlobStore()
    written = []
    try:
        with transaction.atomic():
            package = _get_or_create_package(project, fmt, draft.name)
            normalized_version = fmt.normalize_version(draft.version)
            version = _live_version(package, normalized_version)
            if version is not None:
                _check_duplicate(project, fmt, version, draft)
                if draft.status != version.status and version.status in INSTALLABLE:
                    version.status = draft.status
                    version.save(update_fields=["status", "updated_at"])
            else:
                version = PackageVersion.objects.create(
                    package=package,
                    version=draft.version,
                    normalized_version=normalized_version,
                    status=draft.status,
                    metadata=draft.metadata,
                    **_provenance(principal),
                )
            files = [
                PackageFile.objects.create(version=version, file_name=f.file_name, blob=store.ingest(f.spool, written))
                for f in draft.files
            ]
            fmt.save_format_rows(version, draft, files)
            package_changed(package)
    except BaseException:
        store.discard_unreferenced(written)
        raise
    logger.info(
        "published %s %s %s in %s by %s (%d files)",
        fmt.name,
        draft.name,
        draft.version,
        project.full_path,
        principal,
        len(files),
    )
    return version, files


def package_changed(package):
    """Every write to a package ends here, inside its transaction: new epochs for its name and
    format, the one stamp that cached documents, replayed answers and remembered lookups are keyed
    on (registry.epochs). When Redis cannot take them the write goes on and the change is
    recorded, to be announced once it can (registry.epochs.announce_pending)."""
    epochs.bump(epochs.package_keys(package.format, package.normalized_name), required=False)


WITHDRAWAL_LOG_LENGTH = 50


def set_withdrawn(version, principal, withdrawn, reason=""):
    """Withdraw a version (its format's `withdrawal`: a yank, an unlisting...) with a reason,
    or undo it. Recorded on the version: `metadata["withdrawn"]` (reason, who, when) while it
    lasts, and every change in `metadata["withdrawals"]`. One transaction, ending in
    package_changed, so cached indexes change. Returns False when nothing changed."""
    fmt = formats.get(version.package.format)
    reason = (reason or "").strip()
    if len(reason) > 1024 or not reason.isprintable():
        raise Invalid("400 Bad request - reason is invalid")
    with transaction.atomic():
        row = PackageVersion.objects.select_for_update().get(pk=version.pk)
        metadata = dict(row.metadata or {})
        if withdrawn == ("withdrawn" in metadata) and metadata.get("withdrawn", {}).get("reason", "") == reason:
            return False
        who = principal.user.username if principal.user is not None else str(principal)
        entry = {"reason": reason, "by": who, "at": timezone.now().isoformat()}
        if withdrawn:
            metadata["withdrawn"] = entry
        else:
            metadata.pop("withdrawn", None)
        log = list(metadata.get("withdrawals") or [])
        log.append({"action": fmt.withdrawal if withdrawn else fmt.withdrawal_undone, **entry})
        metadata["withdrawals"] = log[-WITHDRAWAL_LOG_LENGTH:]
        row.metadata = metadata
        row.save(update_fields=["metadata", "updated_at"])
        fmt.on_withdrawn(row, withdrawn)
        package_changed(row.package)
    version.metadata, version.status = row.metadata, row.status
    logger.info(
        "%s %s %s %s in %s by %s",
        fmt.withdrawal if withdrawn else fmt.withdrawal_undone,
        fmt.name,
        version.package.name,
        version.version,
        version.package.project.full_path,
        principal,
    )
    return True


def installable_versions(project, fmt):
    return PackageVersion.objects.filter(package__project=project, package__format=fmt.name, status__in=INSTALLABLE)


def installable_files(projects, fmt, *, name=None, version=None, **filters):
    """The files a client may download (not deleted, in an installable version) of the format's
    packages in `projects` (one Project, or a queryset or list of them), with blob and version
    joined; narrowed to a package `name` and `version` (normalised by the format) and any other
    PackageFile `filters`. Unordered: callers pick the newest their way."""
    several = isinstance(projects, QuerySet | list | tuple | set)
    lookup = {
        ("version__package__project__in" if several else "version__package__project"): projects,
        "version__package__format": fmt.name,
    }
    if name is not None:
        lookup["version__package__normalized_name"] = fmt.normalize_name(name)
    if version is not None:
        lookup["version__normalized_version"] = fmt.normalize_version(version)
    return PackageFile.objects.select_related("blob", "version").filter(
        **lookup,
        version__status__in=INSTALLABLE,
        status=PackageFile.FileStatus.DEFAULT,
        **filters,
    )


def find_file(project, fmt, name, version, file_name):
    """The newest installable file of that name in that version, or None."""
    return installable_files(project, fmt, name=name, version=version, file_name=file_name).order_by("-id").first()


def record_download(version):
    PackageVersion.objects.filter(pk=version.pk).update(
        download_count=F("download_count") + 1, last_downloaded_at=timezone.now()
    )


def mark_version_for_destruction(version):
    """Delete a version for clients at once; rows and objects go later (registry.tasks)."""
    with transaction.atomic():
        PackageVersion.objects.filter(pk=version.pk).update(status=Status.PENDING_DESTRUCTION)
        PackageFile.objects.filter(version=version).update(status=PackageFile.FileStatus.PENDING_DESTRUCTION)
        package_changed(version.package)


def mark_file_for_destruction(package_file):
    with transaction.atomic():
        PackageFile.objects.filter(pk=package_file.pk).update(status=PackageFile.FileStatus.PENDING_DESTRUCTION)
        package_changed(package_file.version.package)


def serve(
    package_file,
    request,
    *,
    content_type="application/octet-stream",
    allow_redirect=True,
    headers=None,
    count_download=True,
):
    """A download response for a file (checksum headers added), counting the download."""
    blob = package_file.blob
    response = BlobStore().serve(
        blob,
        package_file.file_name,
        request,
        content_type=content_type,
        allow_redirect=allow_redirect,
        headers={
            "X-Checksum-SHA256": blob.sha256,
            "X-Checksum-SHA1": blob.sha1,
            "X-Checksum-MD5": blob.md5,
            **(headers or {}),
        },
    )
    if count_download and request.method == "GET":
        # Counted once the response is finished (Django closes it after the last byte is sent),
        # so the UPDATE and its commit are not between the client and its first byte.
        version = package_file.version
        response._resource_closers.insert(0, lambda: record_download(version))
    return response


def read_small_file(package_file, max_size=10 * 1024 * 1024):
    """The bytes of a stored file (metadata documents), refusing anything larger than `max_size`."""
    blob = package_file.blob
    if blob.size > max_size:
        raise ValueError("file too large to read into memory")
    store = BlobStore()
    with store.open(blob) as handle, storage_guard("reading a blob"):
        return handle.read()
