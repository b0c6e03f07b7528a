"""Simple repository documents: PEP 503 HTML and PEP 691 JSON (api 1.1, PEP 700), PEP 658/714
core-metadata links. Each document is built from one query, whatever the number of files."""

import json
from dataclasses import dataclass
from urllib.parse import quote

from django.template.loader import render_to_string
from packaging.version import InvalidVersion, Version

from registry.models import INSTALLABLE, PackageFile

API_VERSION = "1.1"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
# Media types a client may ask for, and what we answer for each.
OFFERS = {
    "application/vnd.pypi.simple.v1+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.v1+html": HTML_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
    "text/html": TEXT_HTML,
}


def negotiate(accept):
    """The response media type for an Accept header (PEP 691); HTML when nothing matches."""
    best, best_q = TEXT_HTML, -1.0
    for item in (accept or "").split(","):
        media, *params = [part.strip() for part in item.split(";")]
        media = media.lower()
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        offer = TEXT_HTML if media in ("*/*", "text/*") else OFFERS.get(media)
        if offer is None or quality <= 0:
            continue
        # Highest quality wins; among equals, the client's first choice.
        if quality > best_q:
            best, best_q = offer, quality
    return best


def content_type_of(media_type):
    return f"{media_type}; charset=utf-8" if media_type == TEXT_HTML else media_type


def _version_key(text):
    try:
        return (0, Version(text), text)
    except InvalidVersion:
        return (1, None, text)


@dataclass
class Link:
    filename: str
    url: str
    sha256: str
    requires_python: str
    core_metadata_sha256: str
    size: int
    upload_time: str
    version: str


def distribution_links(packages, files_base):
    """Every installable file of `packages` (a queryset), one query, sorted by version."""
    rows = (
        PackageFile.objects.filter(
            version__package__in=packages,
            version__status__in=INSTALLABLE,
            status=PackageFile.FileStatus.DEFAULT,
        )
        .select_related("blob", "version", "version__package", "pypi_distribution")
        .order_by("id")
    )
    newest = {}
    for row in rows:  # duplicates of one name across projects: the newest wins
        newest[(row.version.package.project_id, row.file_name)] = row
    links = []
    for row in newest.values():
        distribution = getattr(row, "pypi_distribution", None)
        requires_python = (distribution.requires_python if distribution else "") or row.version.metadata.get(
            "requires_python", ""
        )
        is_wheel = row.file_name.endswith(".whl")
        links.append(
            Link(
                filename=row.file_name,
                url=f"{files_base}/projects/{row.version.package.project_id}/packages/pypi/files/"
                f"{row.blob.sha256}/{quote(row.file_name)}",
                sha256=row.blob.sha256,
                requires_python=requires_python,
                core_metadata_sha256=distribution.core_metadata_sha256 if distribution and is_wheel else "",
                size=row.blob.size,
                upload_time=row.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                version=row.version.version,
            )
        )
    links.sort(key=lambda link: (_version_key(link.version), link.filename))
    return links


def project_html(name, links):
    return render_to_string(
        "packages_pypi/simple_project.html", {"name": name, "links": links, "api_version": API_VERSION}
    )


def project_json(normalized_name, links):
    files = []
    for link in links:
        entry = {
            "filename": link.filename,
            "url": link.url,
            "hashes": {"sha256": link.sha256},
        }
        if link.requires_python:
            entry["requires-python"] = link.requires_python
        metadata = {"sha256": link.core_metadata_sha256} if link.core_metadata_sha256 else False
        entry["core-metadata"] = metadata
        entry["dist-info-metadata"] = metadata  # PEP 714: the old key too, for older clients
        entry["yanked"] = False
        entry["size"] = link.size
        entry["upload-time"] = link.upload_time
        files.append(entry)
    versions = []
    for link in links:
        if link.version not in versions:
            versions.append(link.version)
    document = {
        "meta": {"api-version": API_VERSION},
        "name": normalized_name,
        "files": files,
        "versions": versions,
    }
    return json.dumps(document, separators=(",", ":"))


def index_html(title, base, projects):
    return render_to_string(
        "packages_pypi/simple_index.html",
        {"title": title, "base": base, "projects": projects, "api_version": API_VERSION},
    )


def index_json(projects):
    document = {"meta": {"api-version": API_VERSION}, "projects": [{"name": name} for name, _ in projects]}
    return json.dumps(document, separators=(",", ":"))
