"""JSON shapes of the management API (GitLab's field names) and input validation."""

from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from rest_framework import serializers

from accounts import tokens
from accounts.models import (
    AccessToken,
    DeployToken,
    Group,
    PackageRegistryAccess,
    Visibility,
    validate_path,
)
from accounts.roles import MEMBER_ACCESS_LEVELS
from api.params import BooleanField
from registry.views import base_url  # the one spelling of the server's URL (api.packages, web import it from here)

# --- helpers --------------------------------------------------------------------------------


def iso(value):
    """GitLab's timestamps: ISO 8601 in UTC with milliseconds and a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def date_of(value):
    """A token expiry (00:00 UTC of a date) as the date string GitLab shows for access tokens."""
    if value is None:
        return None
    return value.astimezone(UTC).date().isoformat()


# --- output ---------------------------------------------------------------------------------


def user_json(user, *, with_email=False):
    data = {
        "id": user.pk,
        "username": user.username,
        "name": user.display_name,
        "state": "active" if user.is_active else "blocked",
        "is_admin": user.is_superuser,
        "external": user.is_external,
        "bot": user.is_bot,
        "created_at": iso(user.date_joined),
    }
    if with_email:
        data["email"] = user.email
    return data


def group_json(group, request):
    full_name = group.name
    if group.parent_id:
        # GitLab's full_name: "Root / Sub / Group" (one query for the ancestors' names).
        by_id = dict(Group.objects.filter(pk__in=group.traversal_ids).values_list("pk", "name"))
        full_name = " / ".join(by_id.get(pk, "") for pk in group.traversal_ids)
    return {
        "id": group.pk,
        "name": group.name,
        "path": group.path,
        "full_path": group.full_path,
        "full_name": full_name,
        "parent_id": group.parent_id,
        "visibility": group.visibility,
        "description": group.description,
        "web_url": f"{base_url(request)}/groups/{group.full_path}",
        "created_at": iso(group.created_at),
    }


def namespace_json(project):
    if project.group_id:
        group = project.group
        return {
            "id": group.pk,
            "name": group.name,
            "path": group.path,
            "full_path": group.full_path,
            "kind": "group",
        }
    owner = project.namespace_owner
    return {
        "id": owner.pk,
        "name": owner.display_name,
        "path": owner.username,
        "full_path": owner.username,
        "kind": "user",
    }


def project_json(project, request):
    return {
        "id": project.pk,
        "name": project.name,
        "path": project.path,
        "path_with_namespace": project.full_path,
        "description": project.description,
        "namespace": namespace_json(project),
        "visibility": project.visibility,
        "package_registry_access_level": project.package_registry_access_level,
        "packages_enabled": project.package_registry_access_level != PackageRegistryAccess.DISABLED,
        "ci_job_token_scope_enabled": project.ci_job_token_scope_enabled,
        "web_url": f"{base_url(request)}/{project.full_path}",
        "created_at": iso(project.created_at),
    }


def member_json(membership):
    user = membership.user
    return {
        "id": user.pk,
        "username": user.username,
        "name": user.display_name,
        "state": "active" if user.is_active else "blocked",
        "access_level": membership.access_level,
        "expires_at": membership.expires_at.isoformat() if membership.expires_at else None,
        "created_at": iso(membership.created_at),
    }


def access_token_json(row, *, token=None, access_level=None):
    data = {
        "id": row.pk,
        "name": row.name,
        "description": row.description,
        "revoked": row.revoked,
        "created_at": iso(row.created_at),
        "scopes": list(row.scopes),
        "user_id": row.user_id,
        "last_used_at": iso(row.last_used_at),
        "active": row.active,
        "expires_at": date_of(row.expires_at),
    }
    if access_level is not None:
        data["access_level"] = access_level
    if token is not None:
        data["token"] = token
    return data


def deploy_token_json(row, *, token=None):
    data = {
        "id": row.pk,
        "name": row.name,
        "username": row.username,
        "expires_at": iso(row.expires_at),
        "revoked": row.revoked,
        "expired": row.expired,
        "scopes": list(row.scopes),
    }
    if token is not None:
        data["token"] = token
    return data


def job_json(job, *, token=None):
    data = {
        "id": job.pk,
        "name": job.name,
        "ref": job.ref,
        "status": job.status,
        "project_id": job.project_id,
        "user": {"id": job.user.pk, "username": job.user.username, "name": job.user.display_name},
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }
    if token is not None:
        data["token"] = token
    return data


# --- input ----------------------------------------------------------------------------------

INVALID_VALUE = {"invalid_choice": "does not have a valid value"}


class GitLabSerializer(serializers.Serializer):
    """Input validation with Grape's wording: `{"error": "name is missing"}`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.error_messages["required"] = "is missing"
            field.error_messages["blank"] = "is empty"


def choice(values, **kwargs):
    return serializers.ChoiceField(choices=list(values), error_messages=INVALID_VALUE, **kwargs)


class ScopesField(serializers.Field):
    """A JSON array, a repeated form field, or a comma-separated string of scope names."""

    default_error_messages = {"invalid": "does not have a valid value", "required": "is missing"}

    def __init__(self, allowed, **kwargs):
        self.allowed = tuple(allowed)
        super().__init__(**kwargs)

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):
            values = dictionary.getlist(self.field_name) or dictionary.getlist(f"{self.field_name}[]")
            if not values:
                return serializers.empty
            return values if len(values) > 1 else values[0]
        return dictionary.get(self.field_name, serializers.empty)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [part.strip() for part in data.split(",") if part.strip()]
        if not isinstance(data, list) or not data:
            self.fail("invalid" if data not in (None, [], "") else "required")
        if not all(isinstance(item, str) and item in self.allowed for item in data):
            self.fail("invalid")
        return list(dict.fromkeys(data))

    def to_representation(self, value):
        return value


class ExpiryField(serializers.Field):
    """ISO 8601 date or datetime -> aware datetime (a date expires at 00:00 UTC)."""

    default_error_messages = {"invalid": "is invalid"}

    def to_internal_value(self, data):
        if data in (None, ""):
            return None
        try:
            return tokens.expiry_from_date(data)
        except (TypeError, ValueError):
            self.fail("invalid")

    def to_representation(self, value):
        return value


class BlankableDateField(serializers.DateField):
    def to_internal_value(self, value):
        if value in (None, ""):
            return None
        return super().to_internal_value(value)


class DeployTokenInput(GitLabSerializer):
    name = serializers.CharField(max_length=255)
    scopes = ScopesField(DeployToken.SCOPES)
    expires_at = ExpiryField(required=False, allow_null=True)
    username = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate_username(self, value):
        if value and not DeployToken.USERNAME_RE.match(value):
            raise serializers.ValidationError("is invalid")
        return value


def token_scopes(*, admin):
    excluded = () if admin else ("sudo", "admin_mode")
    return tuple(scope for scope in AccessToken.SCOPES if scope not in excluded)


class AccessTokenInput(GitLabSerializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    scopes = ScopesField(AccessToken.SCOPES)
    expires_at = ExpiryField(required=False, allow_null=True)
    access_level = choice([int(x) for x in MEMBER_ACCESS_LEVELS], required=False)

    def __init__(self, *args, allowed_scopes=AccessToken.SCOPES, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].allowed = tuple(allowed_scopes)

    def validate_expires_at(self, value):
        if value is not None and value.date() <= datetime.now(UTC).date():
            raise serializers.ValidationError("must be in the future")
        limit = settings.ACCESS_TOKEN_MAX_LIFETIME_DAYS
        if value is not None and limit and value.date() > datetime.now(UTC).date() + timedelta(days=limit):
            raise serializers.ValidationError(f"must be within {limit} days (the instance's maximum token lifetime)")
        return value

    def validate(self, attrs):
        """GitLab's maximum allowable lifetime: a token asked for without expiry gets the longest."""
        limit = settings.ACCESS_TOKEN_MAX_LIFETIME_DAYS
        if limit and attrs.get("expires_at") is None:
            attrs["expires_at"] = tokens.expiry_from_date(datetime.now(UTC).date() + timedelta(days=limit))
        return attrs


class MemberInput(GitLabSerializer):
    user_id = serializers.IntegerField(required=False)
    access_level = serializers.IntegerField()
    expires_at = BlankableDateField(required=False, allow_null=True)

    def validate_access_level(self, value):
        if value not in [int(x) for x in MEMBER_ACCESS_LEVELS]:
            raise serializers.ValidationError("does not have a valid value")
        return value

    def validate_expires_at(self, value):
        if value is not None and value <= date.today():
            raise serializers.ValidationError("must be in the future")
        return value


def _validate_path(value):
    try:
        validate_path(value)
    except Exception as exc:
        raise serializers.ValidationError("is invalid") from exc
    return value


class UserInput(GitLabSerializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField()
    name = serializers.CharField(max_length=255)
    password = serializers.CharField(required=False, min_length=8, write_only=True)
    admin = BooleanField(required=False, default=False)
    external = BooleanField(required=False, default=False)

    def validate_username(self, value):
        return _validate_path(value)


class UserUpdateInput(GitLabSerializer):
    """PUT /users/:id: GitLab's fields, each optional."""

    username = serializers.CharField(max_length=150, required=False)
    email = serializers.EmailField(required=False)
    name = serializers.CharField(max_length=255, required=False)
    password = serializers.CharField(required=False, min_length=8, write_only=True)
    admin = BooleanField(required=False)
    external = BooleanField(required=False)

    def validate_username(self, value):
        return _validate_path(value)


class GroupInput(GitLabSerializer):
    name = serializers.CharField(max_length=255)
    path = serializers.CharField(max_length=255)
    parent_id = serializers.IntegerField(required=False, allow_null=True)
    visibility = choice(Visibility.values, required=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_path(self, value):
        return _validate_path(value)


class ProjectInput(GitLabSerializer):
    name = serializers.CharField(max_length=255, required=False)
    path = serializers.CharField(max_length=255, required=False)
    namespace_id = serializers.IntegerField(required=False, allow_null=True)
    visibility = choice(Visibility.values, required=False)
    package_registry_access_level = choice(PackageRegistryAccess.values, required=False)
    description = serializers.CharField(required=False, allow_blank=True)

    def validate_path(self, value):
        return _validate_path(value)

    def validate(self, attrs):
        if not self.partial and not (attrs.get("name") or attrs.get("path")):
            raise serializers.ValidationError({"name": "is missing, path is missing"})
        return attrs


class ProjectUpdateInput(GitLabSerializer):
    name = serializers.CharField(max_length=255, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    visibility = choice(Visibility.values, required=False)
    package_registry_access_level = choice(PackageRegistryAccess.values, required=False)
