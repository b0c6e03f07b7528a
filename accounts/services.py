"""Actions on identities and credentials, one code path for every caller (the REST API, the
pages, the admin, management commands). Tokens are minted by accounts.tokens and shown once."""

import secrets

from django.db import transaction

from accounts import tokens
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
    return row, tokens.issue(row, tokens.DEPLOY_PREFIX)
