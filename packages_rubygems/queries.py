"""The reads RubyGems' indexes are built from, as plain rows, one query each whatever the number
of gems and versions. Yanked versions are in none of them."""

from registry.models import INSTALLABLE, PackageFile, PackageVersion


def _indexed(versions):
    return versions.filter(metadata__withdrawn__isnull=True, status__in=INSTALLABLE)  # not yanked


def has_indexed(packages):
    """Whether any version of `packages` is in the indexes."""
    return _indexed(PackageVersion.objects.filter(package__in=packages)).exists()


def spec_rows(packages):
    """(name, version, metadata) of the indexed versions of `packages`, by name, oldest first."""
    versions = _indexed(PackageVersion.objects.filter(package__in=packages))
    return list(
        versions.order_by("package__name", "created_at", "id").values_list("package__name", "version", "metadata")
    )


def gem_rows(packages):
    """(name, version, metadata, sha256 of the .gem) of the indexed versions of `packages`, by
    name, oldest first (the newest file of each version)."""
    files = PackageFile.objects.filter(
        version__in=_indexed(PackageVersion.objects.filter(package__in=packages)),
        status=PackageFile.FileStatus.DEFAULT,
    )
    newest = {}
    for row in files.order_by("version__package__name", "version__created_at", "version_id", "id").values_list(
        "version__package__name", "version__version", "version__metadata", "blob__sha256", "version_id"
    ):
        newest[row[4]] = row[:4]
    return list(newest.values())


def gem_file(project, fmt_name, file_name):
    """The newest installable `.gem` of that file name in `project` (its version joined), or None."""
    return (
        PackageFile.objects.select_related("blob", "version", "version__package")
        .filter(
            version__package__project=project,
            version__package__format=fmt_name,
            version__status__in=INSTALLABLE,
            status=PackageFile.FileStatus.DEFAULT,
            file_name=file_name,
        )
        .order_by("-id")
        .first()
    )
