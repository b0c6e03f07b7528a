"""Actions on identities and credentials, one code path for every caller (the REST API, the
pages, the admin, management commands). Tokens are minted by accounts.tokens and shown once."""

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts import audit, metrics, tokens
from accounts.models import AccessToken, DeployToken, Membership, User, Visibility

VISIBILITY_RANK = {Visibility.PRIVATE: 0, Visibility.INTERNAL: 1, Visibility.PUBLIC: 2}


def visibility_fits(visibility, parent_group):
    """Nothing is more visible than the group it lives in (GitLab's rule)."""
    return parent_group is None or VISIBILITY_RANK[visibility] <= VISIBILITY_RANK[parent_group.visibility]


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
