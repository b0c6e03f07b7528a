"""The one shared package model: Package -> PackageVersion -> PackageFile -> Blob."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from accounts.models import CiJob, DeployToken, Group, Project


class Blob(models.Model):
    """Content-addressed bytes, stored once however many files point at them."""

    sha256 = models.CharField(max_length=64, unique=True)
    sha1 = models.CharField(max_length=40)
    md5 = models.CharField(max_length=32)
    sha512 = models.CharField(max_length=128)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"blob {self.sha256[:12]} ({self.size} bytes)"

    @property
    def key(self):
        return blob_key(self.sha256)


def blob_key(sha256):
    """The object name of a blob; never built from request values."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a sha256 hex digest")
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class Package(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="packages")
    format = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    normalized_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "format", "normalized_name"], name="package_unique_name"),
        ]
        indexes = [models.Index(fields=["format", "normalized_name"])]

    def __str__(self):
        return f"{self.format} {self.name}"


class Status(models.TextChoices):
    DEFAULT = "default"
    HIDDEN = "hidden"
    PROCESSING = "processing"
    ERROR = "error"
    PENDING_DESTRUCTION = "pending_destruction"
    DEPRECATED = "deprecated"


INSTALLABLE = (Status.DEFAULT, Status.HIDDEN, Status.DEPRECATED)
LISTED = (Status.DEFAULT, Status.ERROR, Status.DEPRECATED)


class PackageVersion(models.Model):
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=255)
    normalized_version = models.CharField(max_length=255)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.DEFAULT)
    metadata = models.JSONField(default=dict, blank=True)
    # Who published it, and with what kind of credential.
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_via = models.CharField(max_length=16, blank=True)
    deploy_token = models.ForeignKey(DeployToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ci_job = models.ForeignKey(CiJob, null=True, blank=True, on_delete=models.SET_NULL)
    download_count = models.PositiveBigIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["package", "normalized_version"],
                condition=~Q(status="pending_destruction"),
                name="version_unique_while_live",
            ),
        ]

    def __str__(self):
        return f"{self.package} {self.version}"


class PackageFile(models.Model):
    """One uploaded file. Several rows may share a file name (duplicates); the newest wins."""

    class FileStatus(models.TextChoices):
        DEFAULT = "default"
        PENDING_DESTRUCTION = "pending_destruction"

    version = models.ForeignKey(PackageVersion, on_delete=models.CASCADE, related_name="files")
    file_name = models.CharField(max_length=1024)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="files")
    status = models.CharField(max_length=32, choices=FileStatus.choices, default=FileStatus.DEFAULT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["version", "file_name"])]

    def __str__(self):
        return self.file_name


def validate_regex(value):
    if len(value) > 255:
        raise ValidationError("at most 255 characters")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"invalid regular expression: {exc}") from exc


class DuplicateSetting(models.Model):
    """A project's duplicate setting for one format: whether a file of the same name may be
    published again to an existing version, with an exception regex that flips the answer.

    Only formats that declare `has_duplicate_setting` (registry.formats) have one; a missing
    row means the default (duplicates allowed, no exception)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="duplicate_settings")
    format = models.CharField(max_length=16)
    allowed = models.BooleanField(default=True)
    exception_regex = models.CharField(max_length=255, blank=True, validators=[validate_regex])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "format"], name="duplicate_setting_unique_format")]

    def __str__(self):
        return f"{self.format} duplicates {'allowed' if self.allowed else 'refused'}"

    def allows(self, name, version):
        """GitLab's rule: the exception regex (anchored, on name or version) flips the setting."""
        if self.exception_regex:
            regex = re.compile(self.exception_regex)
            if regex.fullmatch(name) or regex.fullmatch(version):
                return not self.allowed
        return self.allowed


class CleanupPolicy(models.Model):
    KEEP_N_DUPLICATED_CHOICES = ["all", "1", "10", "20", "30", "40", "50"]

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="packages_cleanup_policy")
    keep_n_duplicated_package_files = models.CharField(
        max_length=8, default="all", choices=[(v, v) for v in KEEP_N_DUPLICATED_CHOICES]
    )
    keep_n_versions = models.PositiveIntegerField(null=True, blank=True)
    older_than_days = models.PositiveIntegerField(null=True, blank=True)
    name_regex_keep = models.CharField(max_length=255, blank=True, validators=[validate_regex])
    name_regex_delete = models.CharField(max_length=255, blank=True, validators=[validate_regex])
    next_run_at = models.DateTimeField(null=True, blank=True)


class PendingEpochChange(models.Model):
    """Epoch keys (registry.epochs) a package write could not change when it happened (Redis
    unreachable): written in the write's own transaction and changed as soon as the store takes
    writes again (registry.epochs.announce_pending), so that nothing cached under the old epochs
    outlives the outage by more than a beat tick."""

    keys = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)


class ProtectionRule(models.Model):
    """A package protection rule (GitLab's `packages_protection_rules`): packages of one type
    whose name matches `package_name_pattern` (`*` is a wildcard) may be pushed only from
    `minimum_access_level_for_push` up (null: Developer, the default) and deleted only from
    `minimum_access_level_for_delete` up (null: Maintainer). `package_type` is a registered
    format's name (checked by registry.protection, never a list here). Levels are access levels,
    with registry.protection.ADMIN (60) for instance administrators only."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="package_protection_rules")
    package_type = models.CharField(max_length=16)
    package_name_pattern = models.CharField(max_length=255)
    minimum_access_level_for_push = models.PositiveSmallIntegerField(null=True, blank=True)
    minimum_access_level_for_delete = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "package_type", "package_name_pattern"], name="protection_rule_unique_pattern"
            ),
        ]

    def __str__(self):
        return f"{self.package_type} {self.package_name_pattern}"

    def clean(self):
        from registry import formats

        if formats.find(self.package_type) is None:
            raise ValidationError({"package_type": "not a format this instance serves"})


class Webhook(models.Model):
    """A project's or group's hook (GitLab's hook API shape) for package events. A group's hooks
    hear the packages of every project under it. `encrypted_token` is registry.secrets' form of
    the token sent as X-Gitlab-Token; it is never shown."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="hooks")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="hooks")
    url = models.CharField(max_length=2048)
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    encrypted_token = models.TextField(blank=True)
    enable_ssl_verification = models.BooleanField(default=True)
    package_events = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(project__isnull=False, group__isnull=True) | Q(project__isnull=True, group__isnull=False),
                name="webhook_of_exactly_one_owner",
            ),
        ]

    def __str__(self):
        return self.url


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one hook: what was sent and what came back."""

    hook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)  # published, deleted, test
    payload = models.JSONField()
    attempt = models.PositiveSmallIntegerField(default=1)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.event} #{self.attempt} -> {self.status_code or self.error or 'pending'}"

    @property
    def succeeded(self):
        return self.status_code is not None and 200 <= self.status_code < 300


# The virtual registry models live in their own module of this app.
from registry.virtual.models import (  # noqa: E402
    CacheEntry,
    NameClaim,
    NegativeEntry,
    OriginPin,
    RegistryUpstream,
    Upstream,
    UpstreamRule,
    VirtualCleanupPolicy,
    VirtualRegistry,
)

__all__ = [
    "Blob",
    "CacheEntry",
    "CleanupPolicy",
    "DuplicateSetting",
    "NameClaim",
    "NegativeEntry",
    "OriginPin",
    "Package",
    "PackageFile",
    "PackageVersion",
    "PendingEpochChange",
    "RegistryUpstream",
    "Upstream",
    "UpstreamRule",
    "VirtualCleanupPolicy",
    "VirtualRegistry",
]
