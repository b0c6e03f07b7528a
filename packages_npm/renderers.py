"""Client documents: the packument and the dist-tags map, in a constant number of queries."""

import base64

from packages_npm.models import NpmDistTag
from packages_npm.parsers import KEPT_KEYS, semver_key
from registry.models import INSTALLABLE, PackageFile, PackageVersion

# Keys of the stored metadata echoed in each version of the packument: the kept keys less the
# descriptive ones the abbreviated document leaves out, plus the flag computed at publish.
NOT_ECHOED_KEYS = frozenset({"keywords", "homepage", "repository", "bugs", "author", "module", "typings"})
ECHOED_KEYS = (*(key for key in KEPT_KEYS if key not in NOT_ECHOED_KEYS), "hasInstallScript")


def _iso(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def integrity(sha512_hex):
    return "sha512-" + base64.b64encode(bytes.fromhex(sha512_hex)).decode()


def tarball_url(base_url, project_id, name, version):
    return f"{base_url}/api/v4/projects/{project_id}/packages/npm/{name}/-/{name}-{version}.tgz"


def _tags(packages, live_versions):
    """Tag -> version; a tag carried by several packages goes to the most recently updated."""
    rows = (
        NpmDistTag.objects.filter(package__in=packages, version__status__in=INSTALLABLE)
        .order_by("updated_at", "id")
        .values_list("tag", "version__version")
    )
    tags = {tag: version for tag, version in rows if version in live_versions}
    if "latest" not in tags and live_versions:
        tags["latest"] = max(live_versions, key=semver_key)
    return dict(sorted(tags.items()))


def dist_tags(packages):
    """Two queries: live versions, tags."""
    live = set(
        PackageVersion.objects.filter(package__in=packages, status__in=INSTALLABLE).values_list("version", flat=True)
    )
    return _tags(packages, live)


def packument(name, packages, base_url):
    """The abbreviated-and-then-some packument; two queries whatever the number of versions."""
    files = (
        PackageFile.objects.filter(
            version__package__in=packages,
            version__status__in=INSTALLABLE,
            status=PackageFile.FileStatus.DEFAULT,
        )
        .select_related("blob", "version", "version__package")
        .order_by("version__created_at", "id")
    )
    newest = {}
    for package_file in files:  # later rows win: the newest file of the newest version row
        newest[package_file.version.version] = package_file
    versions = {}
    times = {}
    for version in sorted(newest, key=semver_key):
        package_file = newest[version]
        row = package_file.version
        metadata = row.metadata or {}
        entry = {"name": name, "version": version}
        entry.update({key: metadata[key] for key in ECHOED_KEYS if key in metadata})
        entry["dist"] = {
            "shasum": package_file.blob.sha1,
            "integrity": integrity(package_file.blob.sha512),
            "tarball": tarball_url(base_url, row.package.project_id, name, version),
        }
        versions[version] = entry
        times[version] = row
    generations = {row.package_id: row.package.generation for row in times.values()}
    created = min((row.created_at for row in times.values()), default=None)
    modified = max((row.updated_at for row in times.values()), default=None)
    document = {
        "_id": name,
        # npm echoes it in unpublish URLs (`/-rev/<rev>`); any value is accepted back
        "_rev": f"{sum(generations.values())}-{len(generations)}",
        "name": name,
        "dist-tags": _tags(packages, set(versions)),
        "versions": versions,
        "time": {},
    }
    if created is not None:
        document["time"] = {"created": _iso(created), "modified": _iso(modified)}
        document["time"].update({version: _iso(row.created_at) for version, row in times.items()})
        document["modified"] = _iso(modified)
    return document
