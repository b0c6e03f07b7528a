"""Forms of the web UI. Token inputs are validated by the management API's serializers
(api.serializers), so a page and the API accept exactly the same values."""

from django import forms

from accounts.models import AccessToken, DeployToken, Visibility
from accounts.roles import MEMBER_ACCESS_LEVELS, AccessLevel
from api.packages import duplicate_setting_fields
from registry import formats
from registry.models import validate_regex

DATE = forms.DateInput(attrs={"type": "date"})


class DeployTokenForm(forms.Form):
    name = forms.CharField(max_length=255)
    expires_at = forms.DateField(required=False, widget=DATE, label="Expiration date")
    username = forms.CharField(max_length=255, required=False, help_text="Default: packhouse+deploy-token-{n}")
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in DeployToken.SCOPES], widget=forms.CheckboxSelectMultiple
    )


class AccessTokenForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    expires_at = forms.DateField(required=False, widget=DATE, label="Expiration date")
    scopes = forms.MultipleChoiceField(choices=[], widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, scopes=AccessToken.SCOPES, with_level=False, max_level=AccessLevel.OWNER, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(s, s) for s in scopes]
        if with_level:
            self.fields["access_level"] = forms.TypedChoiceField(
                coerce=int,
                choices=[(int(lvl), lvl.label) for lvl in AccessLevel if AccessLevel.GUEST <= lvl <= max_level],
                initial=int(min(AccessLevel.MAINTAINER, max_level)),
                label="Role",
            )


def serializer_errors_into(form, errors):
    """Copy a DRF serializer's errors onto the Django form (same field names)."""
    for field, messages in errors.items():
        target = field if field in form.fields else None
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(target, f"{field} {message}" if target is None else str(message))


class AllowlistAddForm(forms.Form):
    KINDS = (("project", "Project"), ("group", "Group"))
    kind = forms.ChoiceField(choices=KINDS, initial="project")
    path = forms.CharField(max_length=2048, label="Full path", help_text="e.g. my-group/my-project")


class GeneralSettingsForm(forms.Form):
    visibility = forms.ChoiceField(choices=Visibility.choices)
    allow_anyone_to_pull = forms.BooleanField(required=False, label="Allow anyone to pull from the package registry")


class GroupGeneralSettingsForm(forms.Form):
    visibility = forms.ChoiceField(choices=Visibility.choices, label="Visibility level")


def _valid_regex(value):
    # A value over the length limit is reported by max_length alone (as the model form did).
    if len(value) <= 255:
        validate_regex(value)


class PackageSettingsForm(forms.Form):
    """One row per format with a duplicate setting; the same field names as the REST API
    (`<format>_duplicates_allowed`, `<format>_duplicate_exception_regex`)."""

    def __init__(self, *args, settings_by_format, own_settings=None, **kwargs):
        """`settings_by_format`: services.duplicate_settings(project), `own_settings`:
        services.own_settings(project) (the formats' own switches), for the initial values."""
        super().__init__(*args, **kwargs)
        self.rows = []
        self.own = []
        for fmt in formats.with_own_settings():
            for field, label in fmt.setting_labels.items():
                self.fields[field] = forms.BooleanField(
                    required=False, initial=(own_settings or {}).get(field, False), label=label
                )
                self.own.append(field)
        for fmt in formats.with_duplicate_setting():
            row = settings_by_format[fmt.name]
            allowed, regex = duplicate_setting_fields(fmt.name)
            self.fields[allowed] = forms.BooleanField(
                required=False, initial=row.allowed, label=f"{fmt.label}: allow duplicates"
            )
            self.fields[regex] = forms.CharField(
                max_length=255,
                required=False,
                initial=row.exception_regex,
                validators=[_valid_regex],
                label=f"{fmt.label}: exceptions (regex)",
            )
            self.rows.append((fmt, allowed, regex))

    def own_fields(self):
        """The formats' own switches, for the template."""
        return [self[field] for field in self.own]

    def own_changes(self):
        return {field: self.cleaned_data[field] for field in self.own}

    def duplicate_rows(self):
        """(format label, allowed field, regex field) for the template's table."""
        return [(fmt.label, self[allowed], self[regex]) for fmt, allowed, regex in self.rows]

    def changes(self):
        """The cleaned data as {format name: {DuplicateSetting attribute: value}}."""
        return {
            fmt.name: {
                attribute: self.cleaned_data[field] for field, attribute in duplicate_setting_fields(fmt.name).items()
            }
            for fmt, _, _ in self.rows
        }


class ProtectionRuleForm(forms.Form):
    """A package protection rule, in GitLab's spellings; validated by registry.protection, as the
    REST API's input is."""

    package_type = forms.ChoiceField(choices=[], label="Package type")
    package_name_pattern = forms.CharField(
        max_length=255, label="Name pattern", help_text="* matches any characters, e.g. @acme/* or my-lib-*"
    )
    minimum_access_level_for_push = forms.ChoiceField(
        choices=[
            ("", "Developer (default)"),
            ("maintainer", "Maintainer"),
            ("owner", "Owner"),
            ("admin", "Administrator"),
        ],
        required=False,
        label="Minimum access level for push",
    )
    minimum_access_level_for_delete = forms.ChoiceField(
        choices=[("", "Maintainer (default)"), ("owner", "Owner"), ("admin", "Administrator")],
        required=False,
        label="Minimum access level for delete",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["package_type"].choices = [
            (fmt.name, fmt.label) for fmt in sorted(formats.all_formats(), key=lambda f: f.name)
        ]

    def rule_fields(self):
        """The cleaned values as the REST API takes them."""
        return {name: self.cleaned_data[name] or None for name in self.fields}


# --- groups, projects, members, users: the API's serializers decide what is valid ------------------

MEMBER_ROLES = [(int(level), level.label) for level in MEMBER_ACCESS_LEVELS]


class NewGroupForm(forms.Form):
    name = forms.CharField(max_length=255, label="Group name")
    path = forms.CharField(max_length=255, label="Group URL", help_text="Letters, digits, '_', '-' and '.'")
    visibility = forms.ChoiceField(
        choices=Visibility.choices, initial=Visibility.PRIVATE, required=False, label="Visibility level"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class NewProjectForm(forms.Form):
    name = forms.CharField(max_length=255, label="Project name")
    namespace_id = forms.ChoiceField(choices=[], label="Project URL (namespace)", required=False)
    path = forms.CharField(max_length=255, required=False, label="Project slug", help_text="Default: from the name")
    visibility = forms.ChoiceField(
        choices=Visibility.choices, initial=Visibility.PRIVATE, required=False, label="Visibility level"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, namespaces=(), personal=None, **kwargs):
        """`namespaces`: the groups the user may create projects in; `personal`: the user's own
        namespace name, or None when they have none (bots)."""
        super().__init__(*args, **kwargs)
        choices = [("", f"{personal} (personal)")] if personal else []
        choices += [(str(group.pk), group.full_path) for group in namespaces]
        self.fields["namespace_id"].choices = choices


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")
    access_level = forms.TypedChoiceField(
        coerce=int, choices=MEMBER_ROLES, initial=int(AccessLevel.GUEST), label="Role"
    )
    expires_at = forms.DateField(required=False, widget=DATE, label="Access expiration date")


class NewUserForm(forms.Form):
    name = forms.CharField(max_length=255)
    username = forms.CharField(max_length=150)
    email = forms.EmailField()
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="At least 8 characters. Leave empty for a user who signs in from a directory only.",
    )
    admin = forms.BooleanField(required=False, label="Administrator")
    external = forms.BooleanField(required=False, label="External (sees only what they are a member of)")
