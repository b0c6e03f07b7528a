"""What PyPI needs per file beyond the core rows: the core metadata (PEP 658) and Requires-Python."""

from django.db import models

from registry.models import PackageFile


class Distribution(models.Model):
    """One uploaded distribution's METADATA (wheel) or PKG-INFO (sdist), stored verbatim."""

    package_file = models.OneToOneField(PackageFile, on_delete=models.CASCADE, related_name="pypi_distribution")
    requires_python = models.CharField(max_length=255, blank=True)
    core_metadata = models.TextField()
    core_metadata_sha256 = models.CharField(max_length=64)

    def __str__(self):
        return f"pypi distribution {self.package_file_id}"
