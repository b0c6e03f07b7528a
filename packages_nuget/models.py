"""NuGet rows the core does not have: the nuspec fields registration and search documents need."""

from django.db import models

from registry.models import PackageVersion


class NugetMetadatum(models.Model):
    version = models.OneToOneField(PackageVersion, on_delete=models.CASCADE, related_name="nuget_metadatum")
    authors = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    summary = models.TextField(blank=True)
    title = models.CharField(max_length=255, blank=True)
    tags = models.TextField(blank=True)
    project_url = models.CharField(max_length=255, blank=True)
    license_url = models.CharField(max_length=255, blank=True)
    icon_url = models.CharField(max_length=255, blank=True)
    # [{"targetFramework": "net45", "dependencies": [{"id": "X", "range": "[1.0, )"}]}]
    dependency_groups = models.JSONField(default=list, blank=True)
    nuspec = models.TextField(blank=True)
    license = models.CharField(max_length=255, blank=True)  # <license>: an SPDX expression or a file
    readme = models.TextField(blank=True)  # the text of the <readme> file
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"nuget metadata of {self.version_id}"
