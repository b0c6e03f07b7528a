"""npm writes the core's publish does not cover: dist-tags and deprecation.

Each runs in one transaction and ends in services.package_changed, so cached packuments change.
"""

from django.db import transaction

from packages_npm.models import NpmDistTag
from registry import services
from registry.models import INSTALLABLE, Package, PackageVersion


def set_dist_tag(package, version, tag):
    with transaction.atomic():
        Package.objects.select_for_update().filter(pk=package.pk).first()
        NpmDistTag.objects.update_or_create(package=package, tag=tag, defaults={"version": version})
        services.package_changed(package)


def remove_dist_tag(package, tag):
    """Remove a tag; False when the package has no such tag."""
    with transaction.atomic():
        Package.objects.select_for_update().filter(pk=package.pk).first()
        deleted, _ = NpmDistTag.objects.filter(package=package, tag=tag).delete()
        if deleted:
            services.package_changed(package)
    return bool(deleted)


def deprecate(package, messages):
    """Set (or, with an empty message, clear) `deprecated` on versions; returns how many changed."""
    changed = 0
    with transaction.atomic():
        Package.objects.select_for_update().filter(pk=package.pk).first()
        rows = PackageVersion.objects.filter(package=package, version__in=list(messages), status__in=INSTALLABLE)
        for row in rows:
            metadata = dict(row.metadata or {})
            message = messages[row.version]
            if message:
                metadata["deprecated"] = message
            else:
                metadata.pop("deprecated", None)
            if metadata != row.metadata:
                row.metadata = metadata
                row.save(update_fields=["metadata", "updated_at"])
                changed += 1
        if changed:
            services.package_changed(package)
    return changed
