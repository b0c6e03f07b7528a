"""The reads the simple index is built from, as plain rows (no model instances), one query each
whatever the number of files. packages_pypi.renderers turns them into documents."""

from registry.models import INSTALLABLE, PackageFile


def distribution_rows(packages):
    """Every downloadable file of `packages` (a queryset), oldest first: tuples of (file name,
    created_at, version, project id, the version's stored requires_python, sha256, size, the
    distribution's requires_python, its core metadata sha256, the version's withdrawal (PEP 592
    yank: {"reason": ...}) or None), as
    packages_pypi.renderers.distribution_links reads them."""
    return list(
        PackageFile.objects.filter(
            version__package__in=packages,
            version__status__in=INSTALLABLE,
            status=PackageFile.FileStatus.DEFAULT,
        )
        .order_by("id")
        .values_list(
            "file_name",
            "created_at",
            "version__version",
            "version__package__project_id",
            "version__metadata__requires_python",
            "blob__sha256",
            "blob__size",
            "pypi_distribution__requires_python",
            "pypi_distribution__core_metadata_sha256",
            "version__metadata__withdrawn",
        )
    )


def project_names(packages):
    """[(name, normalized name)] of `packages` (a queryset), sorted by normalized name; of
    several packages with one normalized name (in several projects), the oldest's spelling."""
    seen = {}
    for name, normalized in packages.order_by("pk").values_list("name", "normalized_name"):
        seen.setdefault(normalized, name)
    return sorted(((name, normalized) for normalized, name in seen.items()), key=lambda item: item[1])
