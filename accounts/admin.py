"""Django admin for identities and credentials. Token digests are never editable (and only
their shown prefix is displayed); tokens are revoked, never edited into validity."""

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Q
from django.utils import timezone

from accounts.jobs import finish_job
from accounts.models import (
    AccessToken,
    AuditEvent,
    CiJob,
    DeployToken,
    Group,
    JobTokenScopeLink,
    Membership,
    Project,
    User,
)


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return (("yes", "Expired"), ("no", "Not expired"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "no":
            return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        return queryset


class UnusedFilter(admin.SimpleListFilter):
    title = "last used"
    parameter_name = "unused"

    def lookups(self, request, model_admin):
        return (("30", "Unused for 30 days"), ("90", "Unused for 90 days"))

    def queryset(self, request, queryset):
        if self.value() in ("30", "90"):
            cutoff = timezone.now() - timedelta(days=int(self.value()))
            return queryset.filter(Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff))
        return queryset


@admin.action(description="Revoke selected tokens")
def revoke_tokens(modeladmin, request, queryset):
    count = 0
    for row in queryset.filter(revoked=False):
        row.revoke()
        count += 1
    modeladmin.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


class TokenAdmin(admin.ModelAdmin):
    """Shared by access and deploy tokens: the digest is not a field of any form."""

    actions = [revoke_tokens]
    exclude = ("digest",)
    readonly_fields = ("token_prefix", "revoked", "revoked_at", "last_used_at", "created_at")
    list_filter = ("revoked", ExpiredFilter, UnusedFilter)

    def has_add_permission(self, request):
        # A token made here would have no secret anyone could see; use the API or the UI.
        return False


@admin.register(AccessToken)
class AccessTokenAdmin(TokenAdmin):
    list_display = ("name", "kind", "user", "token_prefix", "scopes", "expires_at", "revoked", "last_used_at")
    list_filter = ("revoked", "kind", ExpiredFilter, UnusedFilter)
    search_fields = ("name", "user__username", "token_prefix")
    raw_id_fields = ("user", "resource_project", "resource_group")


@admin.register(DeployToken)
class DeployTokenAdmin(TokenAdmin):
    list_display = ("name", "username", "project", "group", "token_prefix", "scopes", "expires_at", "revoked")
    search_fields = ("name", "username", "token_prefix")
    raw_id_fields = ("project", "group", "creator")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "name", "is_superuser", "is_active", "is_external", "is_bot")
    list_filter = ("is_superuser", "is_active", "is_external", "is_bot")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Packhouse", {"fields": ("name", "is_external", "is_bot")}),
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "access_level", "expires_at")
    raw_id_fields = ("user",)
    extra = 0


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("full_path", "name", "visibility", "created_at")
    list_filter = ("visibility",)
    search_fields = ("full_path", "name")
    readonly_fields = ("full_path", "traversal_ids", "created_at")
    raw_id_fields = ("parent",)
    inlines = [MembershipInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("full_path", "name", "visibility", "package_registry_access_level", "ci_job_token_scope_enabled")
    list_filter = ("visibility", "package_registry_access_level", "ci_job_token_scope_enabled")
    search_fields = ("full_path", "name")
    readonly_fields = ("full_path", "created_at")
    raw_id_fields = ("group", "namespace_owner")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "group", "project", "access_level", "expires_at")
    list_filter = ("access_level",)
    search_fields = ("user__username", "group__full_path", "project__full_path")
    raw_id_fields = ("user", "group", "project")


@admin.action(description="Finish selected jobs")
def finish_jobs(modeladmin, request, queryset):
    count = 0
    for job in queryset.filter(status=CiJob.Status.RUNNING):
        finish_job(job, CiJob.Status.CANCELED)
        count += 1
    modeladmin.message_user(request, f"Finished {count} job(s) (canceled).", messages.SUCCESS)


@admin.register(CiJob)
class CiJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "user", "name", "ref", "status", "started_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("project__full_path", "user__username", "name")
    readonly_fields = ("status", "created_at", "started_at", "finished_at")
    exclude = ("token_digest",)
    raw_id_fields = ("project", "user")
    actions = [finish_jobs]

    def has_add_permission(self, request):
        return False  # jobs start through the API or `manage.py ci_job`, which hand out the token


@admin.register(JobTokenScopeLink)
class JobTokenScopeLinkAdmin(admin.ModelAdmin):
    list_display = ("source_project", "target_project", "target_group", "added_by", "created_at")
    search_fields = ("source_project__full_path", "target_project__full_path", "target_group__full_path")
    raw_id_fields = ("source_project", "target_project", "target_group", "added_by")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read only: nobody adds, changes or deletes an audit event here (the retention task alone
    removes old ones)."""

    list_display = ("created_at", "action", "author_kind", "author_name", "entity_type", "entity_path", "ip_address")
    list_filter = ("action", "entity_type", "author_kind")
    search_fields = ("entity_path", "author_name", "target_details")
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
