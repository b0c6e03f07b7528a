from django.contrib import admin, messages

from accounts import roles
from accounts.principals import SESSION, Principal
from registry import policy, services
from registry.errors import RegistryError
from registry.models import Blob, CleanupPolicy, DuplicateSetting, Package, PackageFile, PackageVersion, ProtectionRule


class PackageVersionInline(admin.TabularInline):
    model = PackageVersion
    fields = ("version", "status", "created_via", "creator", "download_count", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):
    list_display = ("name", "format", "project", "created_at")
    list_filter = ("format",)
    search_fields = ("name", "project__full_path")
    readonly_fields = ("project", "format", "name", "normalized_name", "created_at")
    inlines = [PackageVersionInline]


class PackageFileInline(admin.TabularInline):
    model = PackageFile
    fields = ("file_name", "blob", "status", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(PackageVersion)
class PackageVersionAdmin(admin.ModelAdmin):
    list_display = ("package", "version", "status", "created_via", "download_count", "created_at")
    list_filter = ("status", "package__format", "created_via")
    search_fields = ("package__name", "version", "package__project__full_path")
    readonly_fields = (
        "package",
        "version",
        "normalized_version",
        "metadata",
        "creator",
        "created_via",
        "deploy_token",
        "ci_job",
        "download_count",
        "last_downloaded_at",
        "created_at",
    )
    inlines = [PackageFileInline]
    actions = ["mark_for_destruction"]

    @admin.action(description="Delete selected versions (files are removed in the background)")
    def mark_for_destruction(self, request, queryset):
        """Through the policy like any other delete: a version a protection rule keeps from this
        administrator is left, and said so."""
        principal = Principal(kind=SESSION, user=request.user, scopes=frozenset({"api"}))
        for version in queryset.select_related("package__project"):
            try:
                policy.authorize(principal, version.package.project, roles.DESTROY_PACKAGE)
                services.mark_version_for_destruction(version)
            except RegistryError as exc:
                self.message_user(request, f"{version}: {exc.message}", messages.ERROR)


@admin.register(Blob)
class BlobAdmin(admin.ModelAdmin):
    list_display = ("sha256", "size", "created_at")
    search_fields = ("sha256",)
    readonly_fields = ("sha256", "sha1", "md5", "sha512", "size", "created_at")

    def has_add_permission(self, request):
        return False


@admin.register(DuplicateSetting)
class DuplicateSettingAdmin(admin.ModelAdmin):
    list_display = ("project", "format", "allowed", "exception_regex")
    list_filter = ("format",)
    search_fields = ("project__full_path",)


admin.site.register(CleanupPolicy)


@admin.register(ProtectionRule)
class ProtectionRuleAdmin(admin.ModelAdmin):
    list_display = (
        "project",
        "package_type",
        "package_name_pattern",
        "minimum_access_level_for_push",
        "minimum_access_level_for_delete",
    )
    list_filter = ("package_type",)
    search_fields = ("project__full_path", "package_name_pattern")
