"""Storage used by packages, per project or per group (every project under it): what the files
add up to (`packages_size`, GitLab's figure), what is stored once the same content is kept only
once (`stored_size`: each distinct blob counted once), and each package's share. Files of
versions being destroyed are no longer counted."""

from dataclasses import dataclass, field

from django.db.models import Q, Sum

from registry.models import Blob, PackageFile, Status


@dataclass
class Usage:
    packages_size: int = 0
    stored_size: int = 0
    packages: list = field(default_factory=list)  # of (package id, name, format, project path, size)

    @property
    def deduplication_saved(self):
        return self.packages_size - self.stored_size

    def share(self, size):
        return round(100 * size / self.packages_size, 1) if self.packages_size else 0.0


def _live_files(projects):
    return PackageFile.objects.filter(
        ~Q(version__status=Status.PENDING_DESTRUCTION),
        version__package__project__in=projects,
        status=PackageFile.FileStatus.DEFAULT,
    )


def usage_of(projects, top=None):
    """The Usage of `projects` (a queryset); `top`: how many packages to list (largest first)."""
    files = _live_files(projects)
    packages_size = files.aggregate(total=Sum("blob__size"))["total"] or 0
    stored_size = Blob.objects.filter(pk__in=files.values("blob_id")).aggregate(total=Sum("size"))["total"] or 0
    packages = []
    if top:
        rows = (
            files.values(
                "version__package_id",
                "version__package__name",
                "version__package__format",
                "version__package__project__full_path",
            )
            .annotate(size=Sum("blob__size"))
            .order_by("-size", "version__package__name")[:top]
        )
        packages = [
            (
                row["version__package_id"],
                row["version__package__name"],
                row["version__package__format"],
                row["version__package__project__full_path"],
                row["size"],
            )
            for row in rows
        ]
    return Usage(packages_size=packages_size, stored_size=stored_size, packages=packages)


def statistics_json(usage):
    """GitLab's `statistics` object (`statistics=true` on the projects and groups API): only
    packages take storage here; `packages_stored_size` and `deduplication_saved_size` are
    Packhouse's."""
    return {
        "storage_size": usage.stored_size,
        "repository_size": 0,
        "wiki_size": 0,
        "lfs_objects_size": 0,
        "job_artifacts_size": 0,
        "pipeline_artifacts_size": 0,
        "packages_size": usage.packages_size,
        "snippets_size": 0,
        "uploads_size": 0,
        "container_registry_size": 0,
        "packages_stored_size": usage.stored_size,
        "deduplication_saved_size": usage.deduplication_saved,
    }
