"""Forms of the web UI. Token inputs are validated by the management API's serializers
(api.serializers), so a page and the API accept exactly the same values."""

from django import forms

from accounts.models import AccessToken, DeployToken, Visibility
from accounts.roles import AccessLevel
from registry.models import PackageSettings

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


class PackageSettingsForm(forms.ModelForm):
    class Meta:
        model = PackageSettings
        fields = [
            "generic_duplicates_allowed",
            "generic_duplicate_exception_regex",
            "maven_duplicates_allowed",
            "maven_duplicate_exception_regex",
            "nuget_duplicates_allowed",
            "nuget_duplicate_exception_regex",
        ]
        labels = {
            "generic_duplicates_allowed": "Generic: allow duplicates",
            "generic_duplicate_exception_regex": "Generic: exceptions (regex)",
            "maven_duplicates_allowed": "Maven: allow duplicates",
            "maven_duplicate_exception_regex": "Maven: exceptions (regex)",
            "nuget_duplicates_allowed": "NuGet: allow duplicates",
            "nuget_duplicate_exception_regex": "NuGet: exceptions (regex)",
        }
