"""Sign-in from a real OpenLDAP server (Debian's slapd, started here with its own database):
directory users become Packhouse users linked to their DN, directory groups map to group
memberships with a role, tokens keep working until the user is blocked, and local accounts are
never taken over."""

import ldap
import pytest
from django.test import Client, override_settings
from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

from accounts import services
from accounts.directory import sync_memberships
from accounts.models import ExternalIdentity, Membership, User
from accounts.roles import AccessLevel
from tests.accounts import slapd
from tests.conftest import _free_port
from tests.factories import AccessTokenFactory, AdminFactory, GroupFactory, UserFactory
from tests.helpers import auth_headers

pytestmark = pytest.mark.django_db

PEOPLE, GROUPS = f"ou=people,{slapd.SUFFIX}", f"ou=groups,{slapd.SUFFIX}"
LDIF = f"""\
dn: {slapd.SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {GROUPS}
objectClass: organizationalUnit
ou: groups

dn: uid=lena,{PEOPLE}
objectClass: inetOrgPerson
uid: lena
cn: Lena Ldap
sn: Ldap
mail: lena@example.org
userPassword: lena-password

dn: uid=max,{PEOPLE}
objectClass: inetOrgPerson
uid: max
cn: Max Directory
sn: Directory
mail: max@example.org
userPassword: max-password

dn: cn=developers,{GROUPS}
objectClass: groupOfNames
cn: developers
member: uid=lena,{PEOPLE}

dn: cn=maintainers,{GROUPS}
objectClass: groupOfNames
cn: maintainers
member: uid=max,{PEOPLE}
"""


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    slapd.install()
    server = slapd.Slapd(tmp_path_factory.mktemp("slapd"), _free_port(), LDIF)
    yield server
    server.stop()


@pytest.fixture
def ldap_settings(directory):
    with override_settings(
        AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend", "accounts.directory.Backend"],
        AUTH_LDAP_SERVER_URI=directory.uri,
        AUTH_LDAP_USER_SEARCH=LDAPSearch(PEOPLE, ldap.SCOPE_SUBTREE, "(uid=%(user)s)"),
        AUTH_LDAP_USER_ATTR_MAP={"name": "cn", "email": "mail"},
        AUTH_LDAP_ALWAYS_UPDATE_USER=True,
        AUTH_LDAP_GROUP_SEARCH=LDAPSearch(GROUPS, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"),
        AUTH_LDAP_GROUP_TYPE=GroupOfNamesType(),
        LDAP_GROUP_MAP={
            f"cn=developers,{GROUPS}": ("acme", int(AccessLevel.DEVELOPER)),
            f"cn=maintainers,{GROUPS}": ("acme", int(AccessLevel.MAINTAINER)),
        },
    ):
        yield directory


def sign_in(username, password):
    client = Client()
    response = client.post("/users/sign_in", {"username": username, "password": password})
    return client, response


def test_directory_user_signs_in_and_gets_the_mapped_membership(ldap_settings):
    acme = GroupFactory(path="acme")
    client, response = sign_in("lena", "lena-password")
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Welcome, Lena Ldap" in client.get("/").content.decode()
    lena = User.objects.get(username="lena")
    assert (lena.email, lena.has_usable_password()) == ("lena@example.org", False)
    assert ExternalIdentity.objects.get(user=lena, provider="ldap").uid == f"uid=lena,{PEOPLE}".lower()
    assert Membership.objects.get(user=lena, group=acme).access_level == AccessLevel.DEVELOPER
    _, wrong = sign_in("lena", "not-her-password")
    assert wrong.status_code == 200 and b"Please enter a correct username and password" in wrong.content

    # She leaves the directory group: her next sign-in drops the membership it gave.
    ldap_settings.modify(f"cn=developers,{GROUPS}", [(ldap.MOD_REPLACE, "member", [f"uid=max,{PEOPLE}".encode()])])
    sign_in("lena", "lena-password")
    assert not Membership.objects.filter(user=lena, group=acme).exists()
    ldap_settings.modify(f"cn=developers,{GROUPS}", [(ldap.MOD_REPLACE, "member", [f"uid=lena,{PEOPLE}".encode()])])


def test_tokens_work_until_the_directory_user_is_blocked(ldap_settings):
    GroupFactory(path="acme")
    sign_in("lena", "lena-password")
    lena = User.objects.get(username="lena")
    token = AccessTokenFactory(user=lena).plaintext
    assert Client().get("/api/v4/user", **auth_headers(token)).status_code == 200
    services.set_blocked(lena, True)
    assert Client().get("/api/v4/user", **auth_headers(token)).status_code == 401
    _, response = sign_in("lena", "lena-password")
    assert response.status_code == 200  # the sign-in form again: refused
    assert Client().get("/api/v4/user", **auth_headers(token)).status_code == 401


def test_local_accounts_are_never_taken_over(ldap_settings):
    GroupFactory(path="acme")
    local_max = UserFactory(username="max")
    admin = AdminFactory(username="root")
    client, response = sign_in("max", "max-password")
    assert response.status_code == 302
    directory_max = User.objects.get(external_identities__uid=f"uid=max,{PEOPLE}".lower())
    assert directory_max.pk != local_max.pk and directory_max.username == "max2"
    assert directory_max.name == "Max Directory"
    assert sign_in("max", "password-123")[1].status_code == 302  # the local max, by local password
    assert sign_in(admin.username, "password-123")[1].status_code == 302
    assert not Membership.objects.filter(user=local_max).exists()


def test_group_map_setting_is_read_or_refused():
    from accounts.directory_map import parse_group_map

    assert parse_group_map(f"cn=developers,{GROUPS}=acme:developer; cn=leads,{GROUPS}=acme/sub:Owner") == {
        f"cn=developers,{GROUPS}": ("acme", 30),
        f"cn=leads,{GROUPS}": ("acme/sub", 50),
    }
    assert parse_group_map("") == {}
    with pytest.raises(ValueError, match="cannot read"):
        parse_group_map(f"cn=developers,{GROUPS}=acme:emperor")


def test_leaving_the_directory_group_never_takes_the_last_owner():
    """The group map follows the directory, except that a group keeps its last Owner (the rule of
    accounts.services, GitLab's)."""
    acme = GroupFactory(path="acme")
    first, last = UserFactory(), UserFactory()
    owners = f"cn=owners,{GROUPS}"
    with override_settings(LDAP_GROUP_MAP={owners: ("acme", int(AccessLevel.OWNER))}):
        for user in (first, last):
            sync_memberships(user, {owners.lower()})
        sync_memberships(first, set())
        assert not Membership.objects.filter(user=first, group=acme).exists()
        sync_memberships(last, set())
    assert Membership.objects.get(user=last, group=acme).access_level == AccessLevel.OWNER
