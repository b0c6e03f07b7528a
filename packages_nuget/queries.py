"""The reads NuGet's documents are built from. Querysets stay lazy until `entries()` (or a
document's render) reads them, in a constant number of queries whatever the number of versions;
packages_nuget.renderers turns the entries into documents."""

from django.db.models import Q

from packages_nuget.format import NugetFormat
from packages_nuget.models import NugetSymbol
from packages_nuget.renderers import Entry
from registry.models import INSTALLABLE, Package, PackageFile, PackageVersion, Status

FORMAT = NugetFormat()


def packages(projects, name=None):
    """The NuGet packages of `projects` (a queryset), of that id (any case) when given."""
    rows = Package.objects.filter(format=FORMAT.name, project__in=projects)
    if name is not None:
        rows = rows.filter(normalized_name=FORMAT.normalize_name(name))
    return rows


def matching(packages, term):
    """`packages` whose id contains `term` (any case); all of them for an empty term."""
    return packages.filter(normalized_name__icontains=term.lower()) if term else packages


def with_installable_versions(packages):
    return packages.filter(versions__status__in=INSTALLABLE).distinct()


def package_ids(packages):
    """The lowercased ids of `packages`, sorted, each once (one query)."""
    return list(packages.order_by("normalized_name").values_list("normalized_name", flat=True).distinct())


def versions(packages, version=None):
    """The installable versions of `packages`; of that version (NuGet-normalised, or as
    published in any case) when given."""
    rows = PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE)
    if version is not None:
        rows = rows.filter(Q(normalized_version=FORMAT.normalize_version(version)) | Q(version__iexact=version))
    return rows


def listed(versions):
    """`versions` less the unlisted ones (what search answers with)."""
    return versions.exclude(status=Status.HIDDEN)


def stable(versions):
    """`versions` less the pre-releases."""
    return versions.exclude(normalized_version__contains="-")


def newest_metadatum(versions):
    """The NugetMetadatum of the newest of `versions` (one query), or None."""
    row = versions.select_related("nuget_metadatum").order_by("-pk").first()
    return getattr(row, "nuget_metadatum", None) if row else None


def entries(versions, with_files=False):
    """Entry tuples for the versions, in two queries at most (one more with files)."""
    rows = list(versions.select_related("package", "nuget_metadatum").order_by("pk"))
    sizes = {}
    if with_files and rows:
        files = (
            PackageFile.objects.filter(
                version__in=[r.pk for r in rows],
                status=PackageFile.FileStatus.DEFAULT,
                file_name__endswith=".nupkg",
            )
            .select_related("blob")
            .order_by("pk")
        )
        sizes = {f.version_id: (f.blob.size, f.blob.sha512) for f in files}
    result = []
    for row in rows:
        size, sha512 = sizes.get(row.pk, (0, ""))
        result.append(
            Entry(
                project_id=row.package.project_id,
                name=row.package.name,
                version=row.version,
                normalized=row.normalized_version,
                meta=getattr(row, "nuget_metadatum", None),
                downloads=row.download_count,
                published=row.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                size=size,
                sha512=sha512,
                listed=row.status != Status.HIDDEN,
            )
        )
    return result


def symbol(projects, file_name, signature, checksums):
    """The newest portable PDB at the debugger's key (file name and signature, without regard to
    case) with one of `checksums`, in an installable symbol package of `projects`, or None."""
    return (
        NugetSymbol.objects.select_related("package_file__blob")
        .filter(
            file_name=file_name.lower(),
            signature=signature.upper(),
            checksum__in=checksums,
            package_file__status=PackageFile.FileStatus.DEFAULT,
            package_file__version__status__in=INSTALLABLE,
            package_file__version__package__project__in=projects,
        )
        .order_by("-id")
        .first()
    )


def serving_symbols(projects):
    """Those of `projects` whose symbol server setting is on."""
    return projects.filter(nuget_symbol_server__enabled=True)
