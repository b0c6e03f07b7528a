"""All package writes, one transaction each. The duplicate rules live here and only here."""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.http import FileResponse
from django.utils import timezone

from accounts import acting, audit
from accounts.principals import DEPLOY_TOKEN, JOB_TOKEN
from registry import download_counts, epochs, formats, metrics, observe, policy, request_freshness, webhooks
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
from registry.virtual import claims

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
            before = {"allowed": row.allowed, "exception_regex": row.exception_regex}
            for field, value in values.items():
                if field not in ("allowed", "exception_regex"):
                    raise ValueError(f"unknown duplicate setting field {field!r}")
                setattr(row, field, value)
            row.save()
            after = {"allowed": row.allowed, "exception_regex": row.exception_regex}
            for change in audit.changes(before, after):
                names = {"allowed": "duplicates_allowed", "exception_regex": "duplicate_exception_regex"}
                change["change"] = f"{format_name}_{names[change['change']]}"
                audit.record("package_settings_changed", project, details=change)
    return duplicate_settings(project)


def own_settings(project):
    """{field: bool}: the settings formats keep of their own (formats.with_own_settings)."""
    values = {}
    for fmt in formats.with_own_settings():
        values.update(fmt.project_settings(project))
    return values


def save_own_settings(project, values):
    """Apply {field: bool} to the formats' own settings (each format stores its fields), in one
    transaction."""
    with transaction.atomic():
        for fmt in formats.with_own_settings():
            mine = {field: value for field, value in values.items() if field in fmt.setting_labels}
            if mine:
                fmt.save_project_settings(project, mine)
    return own_settings(project)


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
            new_version = version is None
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
            _package_changed(package)
            audit.record(
                "package_published",
                project,
                **_version_target(version),
                details={
                    "package_type": fmt.name,
                    "name": draft.name,
                    "version": draft.version,
                    "files": [{"file_name": f.file_name, "sha256": f.blob.sha256, "size": f.blob.size} for f in files],
                },
            )
            if new_version and version.status == Status.DEFAULT:
                webhooks.package_event("published", version, files)
            claims.record_publish(project, fmt.name, package.normalized_name)
    except BaseException:
        store.discard_unreferenced(written)
        raise
    metrics.PUBLISHES.labels(fmt.name).inc()
    metrics.BYTES.labels("uploaded", fmt.name).inc(sum(f.spool.size for f in draft.files))
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
    """Every write to a package ends here, in its transaction: the policy decides whether the
    request may change this package at all (protection rules; a refusal rolls the write back),
    then new epochs for its name and format, the one stamp that cached documents, replayed
    answers and remembered lookups are keyed on (registry.epochs; when Redis cannot take them the
    write goes on and the change is recorded, to be announced once it can). A format's own writes (tags,
    deprecations) are recorded in the audit trail as `package_updated`, with the request that
    made them; the core's publish, withdrawals and deletes record themselves more precisely."""
    _package_changed(package)
    audit.record(
        "package_updated",
        package.project,
        target_type="Package",
        target_id=package.pk,
        target_details=package.name,
        details={"package_type": package.format, "name": package.name, "request": _request_line()},
    )


def _request_line():
    record = acting.current()
    return record.request_line if record is not None else ""


def _version_target(version):
    package = version.package
    return {"target_type": "Package", "target_id": version.pk, "target_details": f"{package.name}@{version.version}"}


def _package_changed(package):
    policy.authorize_package_change(package)
    epochs.bump(epochs.package_keys(package.format, package.normalized_name), required=False)


WITHDRAWAL_LOG_LENGTH = 50


def set_withdrawn(version, principal, withdrawn, reason=""):
    """Withdraw a version (its format's `withdrawal`: a yank, an unlisting...) with a reason,
    or undo it. Recorded on the version: `metadata["withdrawn"]` (reason, who, when) while it
    lasts, and every change in `metadata["withdrawals"]`, and in the audit trail
    (`package_withdrawn`, `package_withdrawal_undone`: the verb and the reason). One transaction,
    which the policy may refuse (package_changed), and cached indexes change. The one way every
    format withdraws a version: its clients' own command (through the format's views), the REST
    API's withdrawal endpoint and the version's page alike. Returns False when nothing changed."""
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
        _package_changed(row.package)
        audit.record(
            "package_withdrawn" if withdrawn else "package_withdrawal_undone",
            row.package.project,
            **_version_target(row),
            details={
                "package_type": fmt.name,
                "name": row.package.name,
                "version": row.version,
                "action": fmt.withdrawal if withdrawn else fmt.withdrawal_undone,
                "reason": reason,
            },
        )
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


def version_last_modified(version):
    """When the version last changed: its row, or the newest file added to it."""
    newest_file = PackageFile.objects.filter(version=version).aggregate(newest=Max("created_at"))["newest"]
    return max(filter(None, [version.updated_at, version.created_at, newest_file]))


def record_download(version):
    """Count a finished download (registry.download_counts: batched through Redis)."""
    download_counts.record(version.pk)


def mark_version_for_destruction(version):
    """Delete a version for clients at once; rows and objects go later (registry.tasks)."""
    with transaction.atomic():
        PackageVersion.objects.filter(pk=version.pk).update(status=Status.PENDING_DESTRUCTION)
        PackageFile.objects.filter(version=version).update(status=PackageFile.FileStatus.PENDING_DESTRUCTION)
        package = version.package
        _package_changed(package)
        audit.record(
            "package_deleted",
            package.project,
            **_version_target(version),
            details={"package_type": package.format, "name": package.name, "version": version.version},
        )
        if version.status in (Status.DEFAULT, Status.DEPRECATED):  # what clients saw (no hidden metadata)
            webhooks.package_event("deleted", version, list(version.files.select_related("blob").order_by("pk")))
    metrics.DELETES.labels(version.package.format, "version").inc()


def mark_file_for_destruction(package_file):
    with transaction.atomic():
        PackageFile.objects.filter(pk=package_file.pk).update(status=PackageFile.FileStatus.PENDING_DESTRUCTION)
        version = package_file.version
        package = version.package
        _package_changed(package)
        audit.record(
            "package_file_deleted",
            package.project,
            target_type="PackageFile",
            target_id=package_file.pk,
            target_details=f"{package.name}@{version.version}/{package_file.file_name}",
            details={"package_type": package.format, "name": package.name, "version": version.version},
        )
    metrics.DELETES.labels(package_file.version.package.format, "file").inc()


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
    store = BlobStore()
    response = store.serve(
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
    if request.method == "GET":  # the format from the route: no query on the download's hot path
        metrics.BYTES.labels("downloaded", observe.format_of(request)).inc(blob.size)
    if count_download and request.method == "GET":
        # Counted once the response is finished (Django closes it after the last byte is sent),
        # so the UPDATE and its commit are not between the client and its first byte.
        version = package_file.version
        response._resource_closers.insert(0, lambda: record_download(version))
    accel_redirect = response.get("X-Accel-Redirect")
    if request.method == "GET" and (isinstance(response, FileResponse) or accel_redirect):
        # The bytes come from a file of the local disk, sent by the server or by nginx (not a link
        # to the object store): registry.response_cache may answer so again, counted the same.
        request_freshness.of(request.META).download = request_freshness.DownloadFile(
            path=store.storage.path(blob.key),
            size=blob.size,
            version_id=package_file.version_id if count_download else None,
            format=observe.format_of(request),
            accel_redirect=accel_redirect,
        )
    return response


def open_stored_file(package_file):
    """A seekable binary handle on a stored file's bytes (the caller closes it), for a format
    that serves a part of it (a member of an archive); storage out of reach: 503."""
    return BlobStore().open(package_file.blob)


def read_small_file(package_file, max_size=10 * 1024 * 1024):
    """The bytes of a stored file (metadata documents), refusing anything larger than `max_size`."""
    blob = package_file.blob
    if blob.size > max_size:
        raise ValueError("file too large to read into memory")
    store = BlobStore()
    with store.open(blob) as handle, storage_guard("reading a blob"):
        return handle.read()
