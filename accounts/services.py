"""Actions on identities and credentials, one code path for every caller (the REST API, the
pages, the admin, management commands). Tokens are minted by accounts.tokens and shown once."""

import re
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import audit, metrics, tokens
from accounts.models import (
    PATH_RE,
    AccessToken,
    DeployToken,
    Group,
    Membership,
    PackageRegistryAccess,
    Project,
    User,
    Visibility,
    effective_memberships,
    group_access_level,
    project_access_level,
)
from accounts.roles import AccessLevel

VISIBILITY_RANK = {Visibility.PRIVATE: 0, Visibility.INTERNAL: 1, Visibility.PUBLIC: 2}


def visibility_fits(visibility, parent_group):
    """Nothing is more visible than the group it lives in (GitLab's rule)."""
    return parent_group is None or VISIBILITY_RANK[visibility] <= VISIBILITY_RANK[parent_group.visibility]


class Refused(Exception):
    """A create/change the caller asked for that the rules refuse; `message` says why (the API
    wraps it in its status code, the pages show it next to the form)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class PathTaken(Refused):
    def __init__(self):
        super().__init__("has already been taken")


class InvalidPath(Refused):
    def __init__(self):
        super().__init__("is invalid")


class VisibilityNotAllowed(Refused):
    def __init__(self, what, group):
        super().__init__(f"visibility_level of the {what} is not allowed in a {group.visibility} group")


class MemberExists(Refused):
    def __init__(self):
        super().__init__("Member already exists")


class GrantAboveOwn(Refused):
    def __init__(self):
        super().__init__("you cannot grant a role above your own")


class LastOwner(Refused):
    def __init__(self, kind):
        super().__init__(f"A {kind} must have at least one owner")


class UsernameTaken(Refused):
    def __init__(self):
        super().__init__("Username has already been taken")


class EmailTaken(Refused):
    def __init__(self):
        super().__init__("Email has already been taken")


# --- groups and projects ----------------------------------------------------------------------


def may_create_top_level_group(principal):
    """GitLab's default: any signed-in user but external users and bots (admins always)."""
    user = principal.user
    return principal.is_admin or not (user.is_external or user.is_bot)


def create_group(creator, *, name, path, parent=None, visibility=None, description=""):
    """A group (a subgroup when `parent` is given) owned by its creator (GitLab adds the creator
    as Owner, subgroups too). The caller has checked that `creator` may create it there.
    Raises VisibilityNotAllowed, PathTaken."""
    visibility = visibility or Visibility.PRIVATE
    if not visibility_fits(visibility, parent):
        raise VisibilityNotAllowed("group", parent)
    if Group.objects.filter(parent=parent, path__iexact=path).exists():
        raise PathTaken()
    try:
        with transaction.atomic():
            group = Group.objects.create(
                name=name, path=path, parent=parent, visibility=visibility, description=description or ""
            )
            Membership.objects.create(user=creator, group=group, access_level=AccessLevel.OWNER)
    except IntegrityError as exc:
        raise PathTaken() from exc
    return group


def project_slug(name):
    return "-".join(name.strip().lower().split())


def create_project(
    creator, *, name=None, path=None, group=None, visibility=None, package_registry_access_level=None, description=""
):
    """A project in `group`, or in the creator's personal namespace when `group` is None. The
    caller has checked that `creator` may create projects there.
    Raises VisibilityNotAllowed, InvalidPath, PathTaken."""
    name = name or path
    path = path or project_slug(name)
    visibility = visibility or Visibility.PRIVATE
    if not visibility_fits(visibility, group):
        raise VisibilityNotAllowed("project", group)
    owner = None if group else creator
    if Project.objects.filter(group=group, namespace_owner=owner, path__iexact=path).exists():
        raise PathTaken()
    project = Project(
        name=name,
        path=path,
        group=group,
        namespace_owner=owner,
        visibility=visibility,
        package_registry_access_level=package_registry_access_level or PackageRegistryAccess.ENABLED,
        description=description or "",
    )
    try:
        project.full_clean(exclude=["full_path"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidPath() from exc
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError as exc:
        raise PathTaken() from exc
    return project


# --- members ----------------------------------------------------------------------------------


def grant_ceiling(principal, target):
    """The highest role `principal` may grant, change or remove on `target` (a Project or a
    Group): their own level there; None (no ceiling) for an instance admin."""
    if principal.is_admin:
        return None
    if isinstance(target, Project):
        return project_access_level(principal.user, target)
    return group_access_level(principal.user, target)


def _check_grant(principal, target, level):
    ceiling = grant_ceiling(principal, target)
    if ceiling is not None and level > ceiling:
        raise GrantAboveOwn()


def _target_kind(target):
    return "project" if isinstance(target, Project) else "group"


def add_member(principal, target, user, access_level, expires_at=None):
    """Make `user` a direct member of `target` (Project or Group). The caller has checked that
    `principal` administers `target`. Raises GrantAboveOwn, MemberExists."""
    _check_grant(principal, target, access_level)
    try:
        with transaction.atomic():
            return Membership.objects.create(
                user=user, access_level=access_level, expires_at=expires_at, **{_target_kind(target): target}
            )
    except IntegrityError as exc:
        raise MemberExists() from exc


def _owners_of(target):
    """The memberships that make someone an Owner of `target` (GitLab's rule): a top-level
    group's own Owners; for a subgroup or a project, Owners of the groups above count too. Bots
    (behind access tokens), blocked users and expired memberships do not."""
    if isinstance(target, Project):
        source = Q(project=target) | Q(group_id__in=target.group_ids)
    else:
        source = Q(group_id__in=target.traversal_ids if target.parent_id else [target.pk])
    today = timezone.now().date()
    return Membership.objects.filter(
        source,
        Q(expires_at__isnull=True) | Q(expires_at__gte=today),
        access_level__gte=AccessLevel.OWNER,
        user__is_bot=False,
        user__is_active=True,
    )


def _lock_hierarchy(target):
    """Serialise membership changes in `target`'s namespace (its root group's row, or a personal
    project's), so two Owners removing each other at once cannot both pass the last-Owner check."""
    if isinstance(target, Project) and target.group_id is None:
        Project.objects.select_for_update().filter(pk=target.pk).first()
    else:
        root = target.group_ids[0] if isinstance(target, Project) else target.traversal_ids[0]
        Group.objects.select_for_update().filter(pk=root).first()


def leaves_no_owner(membership, target, access_level=None):
    """Whether removing `membership` of `target` (or, with `access_level`, changing it to that
    level) would leave `target` without an Owner. A personal project always has its namespace's
    holder; a group project or subgroup keeps the Owners of the groups above it."""
    if isinstance(target, Project) and target.group_id is None:
        return False
    owners = _owners_of(target)
    if access_level is not None and access_level >= AccessLevel.OWNER:
        return False
    if not owners.filter(pk=membership.pk).exists():
        return False  # it made nobody an Owner: changing it takes no Owner away
    return not owners.exclude(pk=membership.pk).exists()


def change_member(principal, membership, access_level, expires_at=..., target=None):
    """New role (and expiry, unless left out) of a direct membership. Raises GrantAboveOwn,
    LastOwner (the last Owner is not demoted: GitLab's rule, whoever asks)."""
    target = target or membership.project or membership.group
    _check_grant(principal, target, max(access_level, membership.access_level))
    with transaction.atomic():
        _lock_hierarchy(target)
        if leaves_no_owner(membership, target, access_level):
            raise LastOwner(_target_kind(target))
        membership.access_level = access_level
        if expires_at is not ...:
            membership.expires_at = expires_at
        membership.save(update_fields=["access_level", "expires_at"])
    return membership


def remove_member(principal, membership, target=None):
    """End a direct membership (its epochs change first: accounts.signals). Raises GrantAboveOwn,
    LastOwner (the last Owner is not removed: GitLab's rule, whoever asks)."""
    target = target or membership.project or membership.group
    _check_grant(principal, target, membership.access_level)
    with transaction.atomic():
        _lock_hierarchy(target)
        if leaves_no_owner(membership, target):
            raise LastOwner(_target_kind(target))
        membership.delete()


def inherited_memberships(target):
    """Memberships that reach `target` (Project or Group) from the groups above it, nearest group
    first: (membership, source group) pairs, users who are direct members of `target` left out.
    Each user once, with the membership `effective_memberships` says gives them their level."""
    kind = "project" if isinstance(target, Project) else "group"
    ancestor_ids = list(target.group_ids) if kind == "project" else list(target.traversal_ids[:-1])
    if not ancestor_ids:
        return []
    direct = set(Membership.objects.filter(**{kind: target}).values_list("user_id", flat=True))
    rows = [
        row
        for row in effective_memberships(**{kind: target})
        if row.group_id in ancestor_ids and row.user_id not in direct
    ]
    groups = Group.objects.in_bulk({row.group_id for row in rows})
    depth = {group_id: index for index, group_id in enumerate(ancestor_ids)}
    return sorted(
        ((row, groups[row.group_id]) for row in rows), key=lambda pair: (-depth[pair[1].pk], pair[0].user.username)
    )


# --- users ------------------------------------------------------------------------------------


def create_user(values):
    """A user from UserInput's validated values (no password: an unusable one).
    Raises UsernameTaken, EmailTaken."""
    if User.objects.filter(username__iexact=values["username"]).exists():
        raise UsernameTaken()
    if User.objects.filter(email__iexact=values["email"]).exists():
        raise EmailTaken()
    user = User(
        username=values["username"],
        email=values["email"],
        name=values["name"],
        is_superuser=values.get("admin", False),
        is_staff=values.get("admin", False),
        is_external=values.get("external", False),
    )
    if values.get("password"):
        user.set_password(values["password"])
    else:
        user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise UsernameTaken() from exc
    return user


def unique_username(wanted):
    """A valid username like `wanted` that no user has yet (`wanted2`, `wanted3`... otherwise)."""
    wanted = re.sub(r"[^A-Za-z0-9_.\-]", "-", wanted or "").strip(".-")[:100] or "user"
    if not PATH_RE.match(wanted):
        wanted = f"u{wanted}"
    candidate, n = wanted, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{wanted}{n}"
    return candidate


def set_blocked(user, blocked):
    """Block (no sign-in, every token refused) or unblock a user. Announced like every identity
    change, so no process goes on trusting the user's tokens."""
    user.is_active = not blocked
    user.save(update_fields=["is_active"])


def set_admin(user, admin):
    user.is_superuser = user.is_staff = admin
    user.save(update_fields=["is_superuser", "is_staff"])


# --- tokens -----------------------------------------------------------------------------------


def create_personal_token(user, values):
    row = AccessToken(
        user=user,
        kind=AccessToken.Kind.PERSONAL,
        name=values["name"],
        description=values.get("description", ""),
        scopes=values["scopes"],
        expires_at=values.get("expires_at"),
    )
    token = tokens.issue(row, tokens.PERSONAL_PREFIX)
    return row, token


def create_resource_token(kind, resource, values, level):
    """A project or group access token: a new bot user, member of `resource` at `level`.
    `kind` is "project" or "group"; returns (row, plaintext). Shared by the API and web UI."""
    with transaction.atomic():
        bot = User(username=f"{kind}_{resource.pk}_bot_{secrets.token_hex(8)}", name=values["name"], is_bot=True)
        bot.email = f"{bot.username}@noreply.packhouse.invalid"
        bot.set_unusable_password()
        bot.save()
        Membership.objects.create(user=bot, access_level=level, **{kind: resource})
        row = AccessToken(
            user=bot,
            kind=kind,
            name=values["name"],
            description=values.get("description", ""),
            scopes=values["scopes"],
            expires_at=values.get("expires_at"),
            **{f"resource_{kind}": resource},
        )
        token = tokens.issue(row, tokens.PERSONAL_PREFIX)
    return row, token


def revoke_resource_token(row):
    """Revoke a project/group access token and deactivate its bot user."""
    with transaction.atomic():
        row.revoke()
        User.objects.filter(pk=row.user_id, is_bot=True).update(is_active=False)


def create_deploy_token(owner_kind, owner, values, creator):
    """A deploy token of a project or group (`owner_kind` "project" or "group"); returns (row,
    plaintext). Shared by the API and the web UI."""
    row = DeployToken(
        name=values["name"],
        username=values.get("username") or "",
        scopes=values["scopes"],
        expires_at=values.get("expires_at"),
        creator=creator,
        **{owner_kind: owner},
    )
    plaintext = tokens.issue(row, tokens.DEPLOY_PREFIX)
    metrics.deploy_token_changed("created", row.scopes)
    return row, plaintext


ROTATED_TOKEN_DAYS = 7  # GitLab's default lifetime of a rotated token when none is asked for


def revoke_token_family(row):
    """A rotated-away token was presented again (GitLab's reuse detection: it may have leaked):
    revoke every token rotated from it, so whoever holds the chain must sign in to get a new one.
    The number of tokens revoked."""
    revoked = 0
    with transaction.atomic():
        successor = AccessToken.objects.filter(previous=row).first()
        while successor is not None:
            if not successor.revoked:
                successor.revoke()
                revoked += 1
            successor = AccessToken.objects.filter(previous=successor).first()
    return revoked


def rotate_access_token(row, expires_at=None):
    """Revoke an access token and issue its successor (same user, kind, name, scopes and resource),
    in one transaction: if the revocation cannot be announced (accounts.signals), neither happens.
    Returns (new row, plaintext)."""
    if expires_at is None:
        expires_at = tokens.expiry_from_date(timezone.now().date() + timedelta(days=ROTATED_TOKEN_DAYS))
    with transaction.atomic():
        row.revoke()
        successor = AccessToken(
            user=row.user,
            kind=row.kind,
            name=row.name,
            description=row.description,
            scopes=row.scopes,
            expires_at=expires_at,
            resource_project=row.resource_project,
            resource_group=row.resource_group,
            previous=row,
        )
        plaintext = tokens.issue(successor, tokens.PERSONAL_PREFIX)
        audit.token_rotated(row, successor)
    return successor, plaintext
