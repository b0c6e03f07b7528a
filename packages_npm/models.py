"""npm rows the core does not have: dist-tags (a tag names one version of a package) and READMEs."""

from django.db import models

from registry.models import Package, PackageVersion


class NpmDistTag(models.Model):
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="npm_dist_tags")
    tag = models.CharField(max_length=255)
    version = models.ForeignKey(PackageVersion, on_delete=models.CASCADE, related_name="npm_dist_tags")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["package", "tag"], name="npm_dist_tag_unique")]

    def __str__(self):
        return f"{self.package.name}@{self.tag}"


class NpmReadme(models.Model):
    """A version's README as its publish gave it (shown on the version's page, not served to
    clients)."""

    version = models.OneToOneField(PackageVersion, on_delete=models.CASCADE, related_name="npm_readme")
    text = models.TextField()
