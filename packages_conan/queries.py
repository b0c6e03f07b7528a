"""The reads Conan's documents are built from, as plain rows, one query each whatever the number
of revisions and packages. packages_conan.renderers turns them into documents."""

from registry import services


def file_rows(project, fmt, recipe):
    """Every downloadable file of the recipe's version in `project`: (file name, created_at, id),
    oldest first."""
    files = services.installable_files(project, fmt, name=recipe.package_name, version=recipe.version)
    return list(files.order_by("created_at", "id").values_list("file_name", "created_at", "id"))


def recipe_rows(project, fmt):
    """(package name, version) of every installable version of the format in `project`."""
    return list(
        services.installable_versions(project, fmt)
        .order_by("package__name", "version")
        .values_list("package__name", "version")
        .distinct()
    )


def conaninfos(project, fmt, recipe):
    """{`<rrev>:<package_id>:<prev>`: conaninfo.txt} kept on the recipe's version."""
    version = (
        services.installable_versions(project, fmt)
        .filter(package__name=recipe.package_name, version=recipe.version)
        .values_list("metadata", flat=True)
        .first()
    )
    return (version or {}).get("conaninfo", {})
