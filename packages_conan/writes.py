"""Conan writes the core's publish does not cover: removing a recipe revision, or package
revisions, without removing the whole version. Each runs in one transaction and ends in
services.package_changed; a version left without files is deleted with them."""

from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Q

from registry import services
from registry.models import INSTALLABLE, Package, PackageFile, PackageVersion


def remove_files(version, prefixes):
    """Delete the version's files whose names start with any of `prefixes` (for clients at once;
    rows and objects go later); False when there was none."""
    with transaction.atomic():
        Package.objects.select_for_update().filter(pk=version.package_id).first()
        files = PackageFile.objects.filter(version=version, status=PackageFile.FileStatus.DEFAULT)
        matching = reduce(or_, (Q(file_name__startswith=prefix) for prefix in prefixes))
        if not files.filter(matching).update(status=PackageFile.FileStatus.PENDING_DESTRUCTION):
            return False
        if not files.exists():
            live = PackageVersion.objects.filter(pk=version.pk, status__in=INSTALLABLE).first()
            if live is not None:
                services.mark_version_for_destruction(live)
        services.package_changed(version.package)
    return True
