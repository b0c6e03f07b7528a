"""Cargo writes the core's publish does not cover: yank and unyank.

A yanked version stays in the index (`"yanked": true`) and downloadable, so existing lockfiles
keep building; Cargo no longer picks it for a new lockfile. Each runs in one transaction and ends
in services.package_changed, so cached index files change.
"""

from django.db import transaction

from registry import services
from registry.models import INSTALLABLE, Package, PackageVersion


def set_yanked(package, version, yanked):
    """Yank or unyank `version` (a PackageVersion of `package`); False when it was gone."""
    with transaction.atomic():
        Package.objects.select_for_update().filter(pk=package.pk).first()
        row = PackageVersion.objects.filter(pk=version.pk, status__in=INSTALLABLE).first()
        if row is None:
            return False
        metadata = dict(row.metadata or {})
        if bool(metadata.get("yanked")) != yanked:
            metadata["yanked"] = yanked
            row.metadata = metadata
            row.save(update_fields=["metadata", "updated_at"])
            services.package_changed(package)
    return True
