"""Identities and credentials: users, nestable groups, projects, memberships, tokens, CI jobs."""

import re

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Max, Q
from django.utils import timezone

from accounts import metrics
from accounts.roles import AccessLevel

PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")


def validate_path(value):
    if not PATH_RE.match(value) or value.endswith((".git", ".atom")) or ".." in value:
        raise ValidationError(f"{value!r} is not a valid path")


class Visibility(models.TextChoices):
    PRIVATE = "private"
    INTERNAL = "internal"
    PUBLIC = "public"


class User(AbstractUser):
    """A person or a bot behind a project/group access token. `is_superuser` is the instance admin."""

    name = models.CharField(max_length=255, blank=True)
    is_external = models.BooleanField(default=False)
    is_bot = models.BooleanField(default=False)

    @property
    def is_admin(self):
        return self.is_superuser

    @property
    def display_name(self):
        return self.name or self.username


class Group(models.Model):
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=255, validators=[validate_path])
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="subgroups")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    description = models.TextField(blank=True)
    # Denormalised from the parent chain on save: the full path and the ids root..self.
    full_path = models.CharField(max_length=2048, unique=True, editable=False)
    traversal_ids = models.JSONField(default=list, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "path"], name="group_unique_path_in_parent"),
        ]

    def __str__(self):
        return self.full_path

    def save(self, *args, **kwargs):
        self.full_path = f"{self.parent.full_path}/{self.path}" if self.parent else self.path
        if self.pk is None:
            super().save(*args, **kwargs)
            kwargs = {}
        parent_ids = list(self.parent.traversal_ids) if self.parent else []
        self.traversal_ids = [*parent_ids, self.pk]
        super().save(*args, **kwargs)

    @property
    def root(self):
        return self if self.parent_id is None else Group.objects.get(pk=self.traversal_ids[0])

    def descendants(self, include_self=True):
        """Every group under this one (one query, through traversal ids)."""
        qs = Group.objects.filter(full_path__startswith=f"{self.full_path}/")
        if include_self:
            qs = qs | Group.objects.filter(pk=self.pk)
        return qs


class PackageRegistryAccess(models.TextChoices):
    DISABLED = "disabled"  # registry off for the project
    PRIVATE = "private"  # only project members (Reporter+)
    ENABLED = "enabled"  # follows the project's visibility
    PUBLIC = "public"  # anyone may pull, anonymous included ("allow anyone to pull")


class Project(models.Model):
    """A project lives in a group, or in a user's personal namespace (owner set, group null)."""

    name = models.CharField(max_length=255)
    path = models.CharField(max_length=255, validators=[validate_path])
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="projects")
    namespace_owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="personal_projects"
    )
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    package_registry_access_level = models.CharField(
        max_length=16, choices=PackageRegistryAccess.choices, default=PackageRegistryAccess.ENABLED
    )
    # Inbound CI/CD job token allowlist: when on, only allowlisted projects' jobs get in.
    ci_job_token_scope_enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    full_path = models.CharField(max_length=2048, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=False, namespace_owner__isnull=True)
                | Q(group__isnull=True, namespace_owner__isnull=False),
                name="project_in_exactly_one_namespace",
            ),
        ]

    def __str__(self):
        return self.full_path

    def save(self, *args, **kwargs):
        namespace = self.group.full_path if self.group else self.namespace_owner.username
        self.full_path = f"{namespace}/{self.path}"
        super().save(*args, **kwargs)

    @property
    def allows_anyone_to_pull(self):
        return self.package_registry_access_level == PackageRegistryAccess.PUBLIC

    @property
    def group_ids(self):
        """Ids of every ancestor group, root first (empty in a personal namespace)."""
        return list(self.group.traversal_ids) if self.group_id else []

    @property
    def namespace_id(self):
        return self.group_id

    @property
    def root_namespace_path(self):
        return self.full_path.split("/", 1)[0]


class Membership(models.Model):
    """A user's access level in a group (inherited by everything below it) or a project."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships")
    access_level = models.IntegerField(choices=AccessLevel.choices)
    expires_at = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=False, project__isnull=True) | Q(group__isnull=True, project__isnull=False),
                name="membership_of_exactly_one_source",
            ),
            models.UniqueConstraint(
                fields=["user", "group"],
                condition=Q(group__isnull=False),
                name="membership_unique_group",
            ),
            models.UniqueConstraint(
                fields=["user", "project"],
                condition=Q(project__isnull=False),
                name="membership_unique_project",
            ),
        ]


def active_memberships(user):
    today = timezone.now().date()
    return Membership.objects.filter(user=user).filter(Q(expires_at__isnull=True) | Q(expires_at__gte=today))


def effective_memberships(*, project=None, group=None):
    """Every user with access to the project (or group) through a membership that has not
    expired, direct or inherited from an ancestor group, each once with the membership that gives
    the highest level (the nearest of equals), ordered by user id; a personal project's owner is
    an Owner (an unsaved membership). The levels are the ones `project_access_level` and
    `group_access_level` decide with."""
    today = timezone.now().date()
    if project is not None:
        source = Q(project=project) | Q(group_id__in=project.group_ids)
        depth = {None: len(project.group_ids)}
        depth.update({pk: index for index, pk in enumerate(project.group_ids)})
    else:
        source = Q(group_id__in=group.traversal_ids)
        depth = {pk: index for index, pk in enumerate(group.traversal_ids)}
    rows = (
        Membership.objects.filter(source)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gte=today))
        .select_related("user")
    )
    best = {}
    if project is not None and project.namespace_owner_id is not None:
        owner = project.namespace_owner
        best[owner.pk] = Membership(user=owner, project=project, access_level=AccessLevel.OWNER)
        best[owner.pk].created_at = project.created_at
    for row in rows:
        held = best.get(row.user_id)
        if held is None or (row.access_level, depth[row.group_id]) > (held.access_level, depth.get(held.group_id, -1)):
            best[row.user_id] = row
    return [best[user_id] for user_id in sorted(best)]


def project_access_level(user, project):
    """Highest level over direct project membership and every ancestor group (one query)."""
    return project_access_levels(user, [project])[project.pk]


def project_access_levels(user, projects):
    """{project id: project_access_level} for several projects (their groups loaded), in one
    query whatever their number: Owner in the user's own namespace, else the highest level over
    direct project membership and every ancestor group."""
    projects = list(projects)
    levels = dict.fromkeys((project.pk for project in projects), AccessLevel.NO_ACCESS)
    if user is None:
        return levels
    others = []
    for project in projects:
        if project.namespace_owner_id is not None and project.namespace_owner_id == user.pk:
            levels[project.pk] = AccessLevel.OWNER
        else:
            others.append(project)
    if not others:
        return levels
    rows = list(
        active_memberships(user)
        .filter(
            Q(project_id__in=[p.pk for p in others]) | Q(group_id__in=sorted({g for p in others for g in p.group_ids}))
        )
        .values_list("project_id", "group_id", "access_level")
    )
    for project in others:
        ancestors = set(project.group_ids)
        reached = [level for project_id, group_id, level in rows if project_id == project.pk or group_id in ancestors]
        levels[project.pk] = max(reached, default=None) or AccessLevel.NO_ACCESS
    return levels


def group_access_level(user, group):
    """Highest level over the group's own membership and its ancestors' (one query)."""
    if user is None:
        return AccessLevel.NO_ACCESS
    level = (
        active_memberships(user).filter(group_id__in=group.traversal_ids).aggregate(level=Max("access_level"))["level"]
    )
    return level or AccessLevel.NO_ACCESS


def has_membership_below(user, group):
    """Whether the user is a member of any subgroup or project under the group (sees it)."""
    if user is None:
        return False
    prefix = f"{group.full_path}/"
    return (
        active_memberships(user)
        .filter(Q(group__full_path__startswith=prefix) | Q(project__full_path__startswith=prefix))
        .exists()
    )


class TokenState(models.Model):
    """Fields every stored credential has: digest only, expiry, revocation, last use."""

    is_credential = True  # accounts.signals: a new one was never remembered by anyone

    digest = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def expired(self):
        expires_at = getattr(self, "expires_at", None)
        return expires_at is not None and expires_at <= timezone.now()

    @property
    def active(self):
        return not self.revoked and not self.expired

    def revoke(self):
        self.revoked = True
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked", "revoked_at"])


class AccessToken(TokenState):
    """Personal access token, or a project/group access token owned by a bot user."""

    class Kind(models.TextChoices):
        PERSONAL = "personal"
        PROJECT = "project"
        GROUP = "group"

    SCOPES = (
        "api",
        "read_api",
        "read_user",
        "read_repository",
        "write_repository",
        "read_registry",
        "write_registry",
        "sudo",
        "admin_mode",
        "read_virtual_registry",
        "write_virtual_registry",
    )

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSONAL)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    # For project/group access tokens: where the bot user is a member.
    resource_project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="access_tokens"
    )
    resource_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="access_tokens"
    )
    # The token this one was rotated from (its family: accounts.services.revoke_token_family).
    previous = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="successor")

    def __str__(self):
        return f"{self.kind} token {self.name!r} of {self.user.username}"


class DeployToken(TokenState):
    """A credential not tied to a user, reaching one project or every project under a group."""

    SCOPES = (
        "read_repository",
        "read_registry",
        "write_registry",
        "read_package_registry",
        "write_package_registry",
        "read_virtual_registry",
        "write_virtual_registry",
    )
    USERNAME_RE = re.compile(r"^[a-zA-Z0-9.+_-]{1,255}$")

    name = models.CharField(max_length=255)
    username = models.CharField(max_length=255, blank=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="deploy_tokens")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="deploy_tokens")
    creator = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=False, project__isnull=True) | Q(group__isnull=True, project__isnull=False),
                name="deploy_token_of_exactly_one_owner",
            ),
        ]

    def __str__(self):
        return f"deploy token {self.name!r} ({self.username})"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        if not self.username:
            self.username = f"packhouse+deploy-token-{self.pk}"
            super().save(update_fields=["username"])

    def reaches(self, project):
        if self.project_id is not None:
            return project.pk == self.project_id
        return self.group_id in project.group_ids

    def revoke(self):
        """GitLab's "delete" of a deploy token (counted for /-/metrics)."""
        super().revoke()
        metrics.deploy_token_changed("deleted", self.scopes)


class CiJob(models.Model):
    """A CI job: its token lives while the job runs and is dead once it finishes."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed"
        CANCELED = "canceled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="jobs")
    name = models.CharField(max_length=255, default="job")
    ref = models.CharField(max_length=255, default="main")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    token_digest = models.CharField(max_length=64, unique=True, null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"job {self.pk} of {self.project.full_path}"

    @property
    def running(self):
        return self.status == self.Status.RUNNING


class JobTokenScopeLink(models.Model):
    """Inbound allowlist entry: jobs of `target_project` (or of projects under `target_group`)
    may use their job token on `source_project`."""

    source_project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="job_token_allowlist")
    target_project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    MAX_ENTRIES = 200

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(target_group__isnull=False, target_project__isnull=True)
                | Q(target_group__isnull=True, target_project__isnull=False),
                name="job_token_link_exactly_one_target",
            ),
            models.UniqueConstraint(
                fields=["source_project", "target_project"],
                condition=Q(target_project__isnull=False),
                name="job_token_link_unique_project",
            ),
            models.UniqueConstraint(
                fields=["source_project", "target_group"],
                condition=Q(target_group__isnull=False),
                name="job_token_link_unique_group",
            ),
        ]


def job_token_allowed(job_project, target_project):
    """Inbound allowlist rule: may a job of `job_project` act on `target_project`?"""
    return target_project.pk in job_token_allowed_projects(job_project, [target_project])


def job_token_allowed_projects(job_project, target_projects):
    """The ids of the `target_projects` a job of `job_project` may act on (job_token_allowed),
    in one query at most whatever their number: its own project, projects whose allowlist is
    disabled, and those whose allowlist names the job's project or one of its groups."""
    allowed = set()
    limited = []
    for target in target_projects:
        if job_project.pk == target.pk or not target.ci_job_token_scope_enabled:
            allowed.add(target.pk)
        else:
            limited.append(target.pk)
    if limited:
        allowed.update(
            JobTokenScopeLink.objects.filter(
                Q(target_project_id=job_project.pk) | Q(target_group_id__in=job_project.group_ids),
                source_project_id__in=limited,
            ).values_list("source_project_id", flat=True)
        )
    return allowed


class AuditEvent(models.Model):
    """One entry of the audit trail (accounts.audit records them). Written once, never changed:
    saving an existing row or deleting one raises; only the retention task removes old rows, in
    bulk. Secrets are never stored: a token actor is its kind, name and id."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64)
    author = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_name = models.CharField(max_length=255, blank=True)
    # session, personal, project, group, deploy, job, system or anonymous
    author_kind = models.CharField(max_length=16)
    token_id = models.BigIntegerField(null=True, blank=True)
    token_name = models.CharField(max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    entity_type = models.CharField(max_length=16)  # Project, Group, User or Instance
    entity_id = models.BigIntegerField(null=True, blank=True)
    entity_path = models.CharField(max_length=2048, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=255, blank=True)
    target_details = models.CharField(max_length=2048, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["entity_type", "entity_id", "created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.entity_type} {self.entity_path}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("audit events are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("audit events are only removed by the retention task")


class ExternalIdentity(models.Model):
    """A user as a directory or an identity provider knows them (`provider` "oidc", "ldap";
    `uid` the provider's stable id: OIDC's `sub`, the LDAP entry's DN). Signing in through the
    provider finds the user by this row, never by a name or an address the provider sends."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="external_identities")
    provider = models.CharField(max_length=32)
    uid = models.CharField(max_length=1024)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "uid"], name="external_identity_unique_uid")]

    def __str__(self):
        return f"{self.provider}:{self.uid} -> {self.user.username}"
