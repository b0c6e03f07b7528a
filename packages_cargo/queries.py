"""The reads Cargo's index files are built from, as plain rows, one query whatever the number
of versions. packages_cargo.renderers turns them into documents."""

from registry.models import INSTALLABLE, PackageFile


def index_rows(packages):
    """Every installable version of `packages` (a queryset) with its `.crate`, oldest first:
    tuples of (crate name, version, metadata, sha256 of the crate) as
    packages_cargo.renderers.index_file reads them."""
    return list(
        PackageFile.objects.filter(
            version__package__in=packages,
            version__status__in=INSTALLABLE,
            status=PackageFile.FileStatus.DEFAULT,
        )
        .order_by("version__created_at", "version_id", "id")
        .values_list("version__package__name", "version__version", "version__metadata", "blob__sha256")
    )
