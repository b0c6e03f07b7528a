"""RubyGems writes the core's publish does not cover: `gem yank`.

A yanked version leaves every index (`gem` and Bundler no longer see it), while its `.gem` stays
downloadable for lockfiles that name it; it is never pushed again. One transaction, ending in
services.package_changed.
"""

from django.db import transaction

from registry import services
from registry.models import INSTALLABLE, Package, PackageVersion


def yank(version):
    """Yank a PackageVersion; False when it was gone or yanked already."""
    with transaction.atomic():
        Package.objects.select_for_update().filter(pk=version.package_id).first()
        row = PackageVersion.objects.filter(pk=version.pk, status__in=INSTALLABLE).first()
        if row is None or (row.metadata or {}).get("yanked"):
            return False
        row.metadata = {**(row.metadata or {}), "yanked": True}
        row.save(update_fields=["metadata", "updated_at"])
        services.package_changed(row.package)
    return True
