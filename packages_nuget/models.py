"""NuGet rows the core does not have: the nuspec fields registration and search documents need."""

from django.db import models

from registry.models import PackageFile, PackageVersion


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


class NugetSymbol(models.Model):
    """A portable PDB inside a stored symbol package (.snupkg), under the key Visual Studio's
    debugger asks a symbol server for (packages_nuget.symbols). Served out of the package file,
    so it goes when the file goes."""

    package_file = models.ForeignKey(PackageFile, on_delete=models.CASCADE, related_name="nuget_symbols")
    entry = models.CharField(max_length=1024)  # the member's path in the .snupkg
    file_name = models.CharField(max_length=255)  # lower-cased base name
    signature = models.CharField(max_length=64)  # upper-case
    checksum = models.CharField(max_length=64)  # lower-case SHA-256 hex
    size = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["signature", "file_name"], name="nuget_symbol_key")]

    def __str__(self):
        return f"{self.file_name}/{self.signature}"


class NugetSymbolServer(models.Model):
    """GitLab's `nuget_symbol_server_enabled` (off by default), kept per project like the
    duplicate settings: whether the project's symbol files are served."""

    project = models.OneToOneField("accounts.Project", on_delete=models.CASCADE, related_name="nuget_symbol_server")
    enabled = models.BooleanField(default=False)

    def __str__(self):
        return f"symbol server {'on' if self.enabled else 'off'}"
