"""Client documents: the packument and the dist-tags map. Pure: built from the plain rows
packages_npm.queries reads (a constant number of queries, whatever the number of versions)."""

import base64
import hashlib

from packages_npm.parsers import KEPT_KEYS, semver_key

# Keys of the stored metadata echoed in each version of the packument: the kept keys less the
# descriptive ones the abbreviated document leaves out, plus the flag computed at publish.
NOT_ECHOED_KEYS = frozenset({"keywords", "homepage", "repository", "bugs", "author", "module", "typings"})
ECHOED_KEYS = (*(key for key in KEPT_KEYS if key not in NOT_ECHOED_KEYS), "hasInstallScript")


def _iso(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def integrity(sha512_hex):
    return "sha512-" + base64.b64encode(bytes.fromhex(sha512_hex)).decode()


def tarball_url(base_url, project_id, name, version, endpoint=None):
    """A version's tarball under the project endpoint, or under `endpoint` (the group or instance
    endpoint the packument was asked through, `<base>/api/v4/groups/<ref>/-/packages/npm`), so
    clients that send a token only below the URL they were configured with (pnpm, yarn) send it."""
    if endpoint is not None:
        return f"{endpoint}/{name}/-/{name}-{version}.tgz"
    return f"{base_url}/api/v4/projects/{project_id}/packages/npm/{name}/-/{name}-{version}.tgz"


def dist_tags(tag_rows, live_versions):
    """Tag -> version, from [(tag, version)] least recently updated first (queries.tag_rows) and
    the live version strings: a tag carried by several packages goes to the most recently
    updated; `latest` defaults to the highest live version."""
    tags = {tag: version for tag, version in tag_rows if version in live_versions}
    if "latest" not in tags and live_versions:
        tags["latest"] = max(live_versions, key=semver_key)
    return dict(sorted(tags.items()))


def revision(times, tags):
    """A CouchDB-shaped `_rev` ("<count>-<digest>") that changes whenever a version or tag does."""
    material = repr((sorted((version, str(updated)) for version, (_, updated) in times.items()), sorted(tags.items())))
    return f"{len(times)}-{hashlib.sha256(material.encode()).hexdigest()[:32]}"


def packument(name, file_rows, tag_rows, base_url, endpoint=None):
    """The abbreviated-and-then-some packument, from queries.file_rows and queries.tag_rows;
    tarballs under `endpoint` when given (tarball_url)."""
    newest = {}
    for row in file_rows:  # later rows win: the newest file of the newest version row
        newest[row[0]] = row
    versions = {}
    times = {}
    for version in sorted(newest, key=semver_key):
        _, metadata, created_at, updated_at, project_id, sha1, sha512 = newest[version]
        metadata = metadata or {}
        entry = {"name": name, "version": version}
        entry.update({key: metadata[key] for key in ECHOED_KEYS if key in metadata})
        entry["dist"] = {
            "shasum": sha1,
            "integrity": integrity(sha512),
            "tarball": tarball_url(base_url, project_id, name, version, endpoint),
        }
        versions[version] = entry
        times[version] = (created_at, updated_at)
    tags = dist_tags(tag_rows, set(versions))
    document = {
        "_id": name,
        # npm echoes it in unpublish URLs (`/-rev/<rev>`); any value is accepted back
        "_rev": revision(times, tags),
        "name": name,
        "dist-tags": tags,
        "versions": versions,
        "time": {},
    }
    if times:
        modified = max(updated for _, updated in times.values())
        document["time"] = {"created": _iso(min(created for created, _ in times.values())), "modified": _iso(modified)}
        document["time"].update({version: _iso(created) for version, (created, _) in times.items()})
        document["modified"] = _iso(modified)
    return document
