"""The reads npm's documents are built from, as plain rows (no model instances), one query each
whatever the number of versions. packages_npm.renderers turns them into documents."""

from packages_npm.models import NpmDistTag
from registry.models import INSTALLABLE, PackageFile, PackageVersion


def live_versions(packages):
    """The version strings of the installable versions of `packages` (a queryset)."""
    return set(
        PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE).values_list("version", flat=True)
    )


def tag_rows(packages):
    """[(tag, version)] of the installable versions of `packages`, least recently updated first."""
    return list(
        NpmDistTag.objects.filter(package__in=packages, version__status__in=INSTALLABLE)
        .order_by("updated_at", "id")
        .values_list("tag", "version__version")
    )


def file_rows(packages):
    """Every downloadable file of `packages`, oldest version first: tuples of (version, metadata,
    created_at, updated_at, project id, sha1, sha512) as
    packages_npm.renderers.packument reads them."""
    return list(
        PackageFile.objects.filter(
            version__package__in=packages,
            version__status__in=INSTALLABLE,
            status=PackageFile.FileStatus.DEFAULT,
        )
        .order_by("version__created_at", "id")
        .values_list(
            "version__version",
            "version__metadata",
            "version__created_at",
            "version__updated_at",
            "version__package__project_id",
            "blob__sha1",
            "blob__sha512",
        )
    )
