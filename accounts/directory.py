"""Sign-in from an LDAP directory (django-auth-ldap), on when PACKHOUSE_LDAP_URI is set.

A person signs in with their directory name and password; the Packhouse user is the one linked
to their entry's DN (ExternalIdentity), created on first sign-in (name and e-mail from the entry,
no local password, a username made unique, so no local account is ever taken over). With a group
map (`settings.LDAP_GROUP_MAP`: {directory group DN: (group full path, access level)}), each
sign-in makes the user's memberships follow their directory groups: a member of a mapped
directory group gets at least that role in the Packhouse group; one who left it loses a
membership at exactly that role, unless it is the group's last Owner. A blocked user cannot sign
in; tokens keep working for clients whatever the sign-in method, until the user is blocked."""

from django.conf import settings
from django.db import transaction
from django_auth_ldap.backend import LDAPBackend

from accounts.models import ExternalIdentity, Group, Membership, User
from accounts.services import leaves_no_owner, unique_username

PROVIDER = "ldap"


class Backend(LDAPBackend):
    def get_or_build_user(self, username, ldap_user):
        identity = (
            ExternalIdentity.objects.filter(provider=PROVIDER, uid=ldap_user.dn.lower()).select_related("user").first()
        )
        if identity is not None:
            return identity.user, False
        return User(username=unique_username(username)), True

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None or not user.is_active:
            return None  # a blocked user does not sign in
        with transaction.atomic():
            ExternalIdentity.objects.get_or_create(provider=PROVIDER, uid=ldap_user.dn.lower(), defaults={"user": user})
            sync_memberships(user, {dn.lower() for dn in ldap_user.group_dns})
        return user

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None


def sync_memberships(user, group_dns):
    """Memberships of `user` following the directory groups they are in (`group_dns`, lower
    case) through settings.LDAP_GROUP_MAP."""
    for group_dn, (path, level) in getattr(settings, "LDAP_GROUP_MAP", {}).items():
        group = Group.objects.filter(full_path__iexact=path).first()
        if group is None:
            continue
        membership = Membership.objects.filter(user=user, group=group).first()
        if group_dn.lower() in group_dns:
            if membership is None:
                Membership.objects.create(user=user, group=group, access_level=level)
            elif membership.access_level < level:
                membership.access_level = level
                membership.save(update_fields=["access_level"])
        elif membership is not None and membership.access_level == level:
            if not leaves_no_owner(membership, group):  # the last Owner stays (GitLab's rule)
                membership.delete()
