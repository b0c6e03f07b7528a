"""Sign-in with OpenID Connect (mozilla-django-oidc), on when PACKHOUSE_OIDC_ISSUER is set.

The provider's endpoints come from its discovery document (`<issuer>/.well-known/openid-
configuration`), read once per process when first needed. A person who signs in is the user
linked to the provider's `sub` (ExternalIdentity), created on first sign-in with a username from
`preferred_username` (else the e-mail's local part), made unique; no local password. A blocked
user cannot sign in; tokens keep working for clients whatever the sign-in method."""

from functools import lru_cache

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from accounts.models import ExternalIdentity, User
from accounts.services import unique_username

PROVIDER = "oidc"
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


@lru_cache(maxsize=4)
def discovery(issuer):
    """The provider's discovery document (cached for the process once read)."""
    response = requests.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    document = response.json()
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise ImproperlyConfigured(f"the OpenID provider at {issuer} names another issuer: {document.get('issuer')}")
    return document


def oidc_setting(attr, *args):
    """A mozilla-django-oidc setting; the provider's endpoints from its discovery document."""
    if attr in DISCOVERED and getattr(settings, attr, None) is None:
        return discovery(settings.OIDC_ISSUER)[DISCOVERED[attr]]
    return import_from_settings(attr, *args)


def _username_from(claims):
    return unique_username(claims.get("preferred_username") or (claims.get("email") or "").split("@", 1)[0])


class Backend(OIDCAuthenticationBackend):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        # Django builds every backend for every sign-in: a provider that cannot be reached must
        # not stop local passwords (nor sessions) from working.
        self.available = True
        try:
            super().__init__(*args, **kwargs)
        except (requests.RequestException, ValueError, ImproperlyConfigured):
            self.available = False

    def authenticate(self, request, **kwargs):
        if not self.available:
            return None
        user = super().authenticate(request, **kwargs)
        if user is None or not user.is_active:
            return None  # a blocked user does not sign in
        return user

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None

    def verify_claims(self, claims):
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        return User.objects.filter(external_identities__provider=PROVIDER, external_identities__uid=claims["sub"])

    def create_user(self, claims):
        with transaction.atomic():
            user = User(
                username=_username_from(claims),
                email=claims.get("email") or "",
                name=claims.get("name") or "",
            )
            user.set_unusable_password()
            user.save()
            ExternalIdentity.objects.create(user=user, provider=PROVIDER, uid=claims["sub"])
        return user

    def update_user(self, user, claims):
        changed = []
        for field, claim in (("email", "email"), ("name", "name")):
            value = claims.get(claim)
            if value and getattr(user, field) != value:
                setattr(user, field, value)
                changed.append(field)
        if changed:
            user.save(update_fields=changed)
        return user


class AuthenticationRequestView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)
