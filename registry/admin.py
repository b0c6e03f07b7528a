from django.contrib import admin

from registry import services
from registry.models import Blob, CleanupPolicy, DuplicateSetting, Package, PackageFile, PackageVersion


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
        for version in queryset:
            services.mark_version_for_destruction(version)


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
