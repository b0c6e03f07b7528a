"""Shared fixtures for the management API tests: a group tree and people with roles in it."""

import pytest

from accounts.roles import AccessLevel
from tests.factories import (
    AccessTokenFactory,
    AdminFactory,
    GroupFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.helpers import auth_headers


class Person:
    def __init__(self, user, scopes=("api",)):
        self.user = user
        self.token = AccessTokenFactory(user=user, scopes=list(scopes))
        self.headers = auth_headers(self.token.plaintext)


@pytest.fixture
def tree():
    acme = GroupFactory(path="acme", name="Acme")
    sub = GroupFactory(path="sub", name="Sub", parent=acme)
    proj = ProjectFactory(group=sub, path="proj", name="Proj")
    other = ProjectFactory(group=GroupFactory(path="other"), path="elsewhere")
    return {"acme": acme, "sub": sub, "proj": proj, "other": other}


def person(level=None, *, group=None, project=None, scopes=("api",), **user_kwargs):
    user = UserFactory(**user_kwargs)
    if level is not None:
        MembershipFactory(user=user, access_level=level, group=group, project=project)
    return Person(user, scopes)


@pytest.fixture
def people(tree):
    return {
        "admin": Person(AdminFactory()),
        "owner": person(AccessLevel.OWNER, group=tree["acme"]),
        "maintainer": person(AccessLevel.MAINTAINER, project=tree["proj"]),
        "developer": person(AccessLevel.DEVELOPER, group=tree["sub"]),
        "reporter": person(AccessLevel.REPORTER, project=tree["proj"]),
        "guest": person(AccessLevel.GUEST, project=tree["proj"]),
        "stranger": person(),
    }
