"""The reads the GOPROXY answers are built from, one query each whatever the number of versions."""

from registry.models import INSTALLABLE, PackageVersion


def version_rows(packages):
    """(version, created_at) of the installable versions of `packages`, oldest first; a version
    in several projects (a group's proxy) is listed at its first upload."""
    rows = PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE, files__status="default")
    first = {}
    for version, created_at in rows.order_by("created_at", "id").values_list("version", "created_at"):
        first.setdefault(version, created_at)
    return list(first.items())
