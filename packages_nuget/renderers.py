"""NuGet client documents: v3 service index, registration, search, flat container; v2 Atom feed.

`entries` are Entry tuples built by the views in a constant number of queries; renderers do
no queries.
"""

import base64
import json
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from django.template.loader import render_to_string

from packages_nuget import parsers

MAX_VERSIONS = 300


UNLISTED_PUBLISHED = "1900-01-01T00:00:00Z"  # how nuget.org's v2 feed marks an unlisted version


@dataclass
class Entry:
    """One installable version, with what every document needs of it."""

    project_id: int
    name: str  # the package name as published
    version: str  # as published
    normalized: str
    meta: object  # NugetMetadatum or None
    downloads: int
    published: str
    size: int = 0
    sha512: str = ""
    listed: bool = True  # False once unlisted: out of search, still installable by exact version


def dumps(document):
    return json.dumps(document, separators=(",", ":"))


def project_prefix(base_url, project_id):
    return f"{base_url}/api/v4/projects/{project_id}/packages/nuget"


def service_index(prefix, project_level):
    def resources(at, types, comment):
        return [{"@id": at, "@type": t, "comment": comment} for t in types]

    items = []
    if project_level:
        items += resources(prefix, ["PackagePublish/2.0.0"], "Push and delete (or unlist) packages.")
        items += resources(f"{prefix}/symbolpackage", ["SymbolPackagePublish/4.9.0"], "Push symbol packages.")
        items += resources(f"{prefix}/download", ["PackageBaseAddress/3.0.0"], "Get package content (.nupkg).")
    items += resources(
        f"{prefix}/query",
        ["SearchQueryService", "SearchQueryService/3.0.0-beta", "SearchQueryService/3.0.0-rc"],
        "Filter and search for packages by keyword.",
    )
    items += resources(
        f"{prefix}/metadata",
        ["RegistrationsBaseUrl", "RegistrationsBaseUrl/3.0.0-beta", "RegistrationsBaseUrl/3.0.0-rc"],
        "Get package metadata.",
    )
    return dumps({"version": "3.0.0", "resources": items})


def sort_entries(entries):
    """Oldest first by NuGet precedence, one entry per normalised version (the newest row wins,
    entries come in row order), at most the MAX_VERSIONS newest."""
    unique = {}
    for entry in entries:
        unique[entry.normalized] = entry
    ordered = sorted(unique.values(), key=lambda e: parsers.sort_key(e.normalized))
    return ordered[-MAX_VERSIONS:]


def content_url(base_url, entry):
    lower = entry.name.lower()
    prefix = project_prefix(base_url, entry.project_id)
    return f"{prefix}/download/{lower}/{entry.normalized}/{lower}.{entry.normalized}.nupkg"


def _dependency_groups(entry):
    groups = []
    for group in (entry.meta.dependency_groups if entry.meta else None) or []:
        item = {"@type": "PackageDependencyGroup"}
        if group.get("targetFramework"):
            item["targetFramework"] = group["targetFramework"]
        deps = [
            {"@type": "PackageDependency", "id": d["id"], "range": d.get("range") or "(, )"}
            for d in group.get("dependencies", [])
        ]
        if deps:
            item["dependencies"] = deps
        groups.append(item)
    return groups


def catalog_entry(entry, base_url, leaf_url):
    meta = entry.meta
    document = {
        "@id": leaf_url,
        "@type": "PackageDetails",
        "authors": meta.authors if meta else "",
        "dependencyGroups": _dependency_groups(entry),
        "description": meta.description if meta else "",
        "id": entry.name,
        "version": entry.normalized,
        "listed": entry.listed,
        "packageContent": content_url(base_url, entry),
        "published": entry.published if entry.listed else UNLISTED_PUBLISHED,  # as nuget.org marks it
        "summary": (meta.summary if meta else "") or "",
        "tags": (meta.tags if meta else "") or "",
        "title": (meta.title if meta else "") or "",
    }
    for key, attr in (("projectUrl", "project_url"), ("licenseUrl", "license_url"), ("iconUrl", "icon_url")):
        value = getattr(meta, attr, "") if meta else ""
        if value:
            document[key] = value
    if entry.sha512:  # as nuget.org's catalog leaves: what a proxy checks the .nupkg against
        document["packageHash"] = base64.b64encode(bytes.fromhex(entry.sha512)).decode()
        document["packageHashAlgorithm"] = "SHA512"
    return document


def _leaf(entry, base_url, metadata_prefix):
    leaf_url = f"{metadata_prefix}/{entry.name.lower()}/{entry.normalized}.json"
    return {
        "@id": leaf_url,
        "packageContent": content_url(base_url, entry),
        "catalogEntry": catalog_entry(entry, base_url, leaf_url),
    }


def registration_index(name, entries, base_url, metadata_prefix):
    ordered = sort_entries(entries)
    index_url = f"{metadata_prefix}/{name.lower()}/index.json"
    items = [_leaf(e, base_url, metadata_prefix) for e in ordered]
    page = {
        "@id": index_url,
        "count": len(items),
        "lower": ordered[0].normalized if ordered else "",
        "upper": ordered[-1].normalized if ordered else "",
        "items": items,
    }
    return dumps({"@id": index_url, "count": 1, "items": [page]})


def registration_leaf(entry, base_url, metadata_prefix):
    leaf = _leaf(entry, base_url, metadata_prefix)
    leaf["@type"] = ["Package"]
    leaf["listed"] = entry.listed
    leaf["published"] = entry.published if entry.listed else UNLISTED_PUBLISHED
    return dumps(leaf)


def search(groups, total, base_url, metadata_prefix):
    """`groups`: [(name, [Entry...])] for one page of package names."""
    data = []
    for name, entries in groups:
        ordered = sort_entries(entries)
        latest = ordered[-1]
        meta = latest.meta
        data.append(
            {
                "@type": "Package",
                "authors": meta.authors if meta else "",
                "id": latest.name,
                "title": (meta.title if meta else "") or latest.name,
                "description": meta.description if meta else "",
                "summary": (meta.summary if meta else "") or "",
                "totalDownloads": sum(e.downloads for e in ordered),
                "verified": True,
                "version": latest.normalized,
                "versions": [
                    {
                        "@id": f"{metadata_prefix}/{name.lower()}/{e.normalized}.json",
                        "version": e.normalized,
                        "downloads": e.downloads,
                    }
                    for e in ordered
                ],
                "tags": (meta.tags if meta else "") or "",
                "projectUrl": (meta.project_url if meta else "") or "",
                "licenseUrl": (meta.license_url if meta else "") or "",
                "iconUrl": (meta.icon_url if meta else "") or "",
                "registration": f"{metadata_prefix}/{name.lower()}/index.json",
            }
        )
    return dumps({"totalHits": total, "data": data})


def flat_versions(entries):
    return dumps({"versions": [e.normalized for e in sort_entries(entries)]})


# --- v2 (OData / Atom) -----------------------------------------------------------------------

ATOM = "application/atom+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"


def v2_service(prefix):
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<service xml:base="{escape(prefix)}/v2" xmlns="http://www.w3.org/2007/app" '
        'xmlns:atom="http://www.w3.org/2005/Atom">'
        "<workspace><atom:title>Default</atom:title>"
        '<collection href="Packages"><atom:title>Packages</atom:title></collection>'
        "</workspace></service>"
    )


def v2_metadata():
    """The EDMX document NuGet 2.x reads to learn the feed supports FindPackagesById."""
    return render_to_string("packages_nuget/v2_metadata.xml")


def _prop(name, value, edm_type=None):
    attrs = f' m:type="{edm_type}"' if edm_type else ""
    if value is None or value == "":
        if edm_type in (None, "Edm.String"):
            return f'<d:{name}{attrs} m:null="true"/>' if value is None else f"<d:{name}{attrs}></d:{name}>"
    return f"<d:{name}{attrs}>{escape(str(value))}</d:{name}>"


def _v2_entry(entry, prefix_v2, download_url, latest, absolute_latest):
    meta = entry.meta
    entry_id = f"{prefix_v2}/Packages(Id='{entry.name}',Version='{entry.normalized}')"
    hash_b64 = base64.b64encode(bytes.fromhex(entry.sha512)).decode() if entry.sha512 else ""
    properties = "".join(
        [
            _prop("Id", entry.name),
            _prop("Version", entry.normalized),
            _prop("NormalizedVersion", entry.normalized),
            _prop("Title", (meta.title if meta else "") or entry.name),
            _prop("Authors", meta.authors if meta else ""),
            _prop("Description", meta.description if meta else ""),
            _prop("Summary", (meta.summary if meta else "") or ""),
            _prop("Tags", (meta.tags if meta else "") or ""),
            _prop("ProjectUrl", (meta.project_url if meta else "") or ""),
            _prop("LicenseUrl", (meta.license_url if meta else "") or ""),
            _prop("IconUrl", (meta.icon_url if meta else "") or ""),
            _prop("Dependencies", parsers.dependencies_string(meta.dependency_groups if meta else [])),
            _prop("DownloadCount", entry.downloads, "Edm.Int32"),
            _prop("VersionDownloadCount", entry.downloads, "Edm.Int32"),
            _prop("IsLatestVersion", "true" if latest else "false", "Edm.Boolean"),
            _prop("IsAbsoluteLatestVersion", "true" if absolute_latest else "false", "Edm.Boolean"),
            _prop("IsPrerelease", "true" if parsers.is_prerelease(entry.normalized) else "false", "Edm.Boolean"),
            _prop("Listed", "true" if entry.listed else "false", "Edm.Boolean"),
            _prop("PackageSize", entry.size, "Edm.Int64"),
            _prop("PackageHash", hash_b64),
            _prop("PackageHashAlgorithm", "SHA512"),
            _prop("Published", entry.published if entry.listed else UNLISTED_PUBLISHED, "Edm.DateTime"),
        ]
    )
    return (
        "<entry>"
        f"<id>{escape(entry_id)}</id>"
        '<category term="NuGetGallery.OData.V2FeedPackage" '
        'scheme="http://schemas.microsoft.com/ado/2007/08/dataservices/scheme"/>'
        f'<link rel="edit" title="V2FeedPackage" href={quoteattr(entry_id)}/>'
        f'<title type="text">{escape(entry.name)}</title>'
        f'<summary type="text">{escape((meta.summary if meta else "") or "")}</summary>'
        f"<updated>{escape(entry.published)}</updated>"
        f"<author><name>{escape(meta.authors if meta else '')}</name></author>"
        f'<link rel="edit-media" title="V2FeedPackage" href={quoteattr(entry_id + "/$value")}/>'
        f'<content type="application/zip" src={quoteattr(download_url)}/>'
        f"<m:properties>{properties}</m:properties>"
        "</entry>"
    )


NAMESPACES = (
    'xmlns="http://www.w3.org/2005/Atom" '
    'xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" '
    'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
)


def v2_entries(entries, base_url, prefix_v2):
    """Atom entries for every version of each package in `entries`, latest flags per name."""
    by_name = {}
    for entry in entries:
        by_name.setdefault(entry.name.lower(), []).append(entry)
    parts = []
    for name in sorted(by_name):
        ordered = sort_entries(by_name[name])
        listed = [e for e in ordered if e.listed]  # an unlisted version is never the latest (nuget.org)
        stable = [e for e in listed if not parsers.is_prerelease(e.normalized)]
        latest = stable[-1] if stable else None
        absolute_latest = listed[-1] if listed else None
        for entry in ordered:
            download = f"{project_prefix(base_url, entry.project_id)}/v2/download/{name}/{entry.normalized}"
            parts.append(_v2_entry(entry, prefix_v2, download, entry is latest, entry is absolute_latest))
    return parts


def v2_feed(entries, base_url, prefix_v2, updated):
    body = "".join(v2_entries(entries, base_url, prefix_v2))
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<feed xml:base="{escape(prefix_v2)}" {NAMESPACES}>'
        f"<id>{escape(prefix_v2)}/Packages</id>"
        '<title type="text">Packages</title>'
        f"<updated>{escape(updated)}</updated>"
        f'<link rel="self" title="Packages" href="Packages"/>'
        f"{body}</feed>"
    )


def v2_single(entries, base_url, prefix_v2):
    parts = v2_entries(entries, base_url, prefix_v2)
    entry = parts[0]
    return '<?xml version="1.0" encoding="utf-8"?>' + entry.replace(
        "<entry>", f'<entry xml:base="{escape(prefix_v2)}" {NAMESPACES}>', 1
    )
