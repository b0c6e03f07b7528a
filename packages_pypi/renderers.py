"""Simple repository documents: PEP 503 HTML and PEP 691 JSON (api 1.1, PEP 700), PEP 658/714
core-metadata links. Pure: built from the plain rows packages_pypi.queries reads (one query per
document, whatever the number of files)."""

import json
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

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
    yanked: str | None = None  # PEP 592: the reason ("" for none) when the release is yanked


def distribution_links(rows, files_base):
    """Links to the files of queries.distribution_rows, sorted by version.

    Plain rows, no model instances: a page of a thousand files is built in a few milliseconds
    of Python."""
    newest = {}
    for row in rows:  # duplicates of one name across projects: the newest wins
        newest[(row[3], row[0])] = row
    links = []
    for row in newest.values():
        file_name, created_at, version, project_id, stored_requires, sha256, size, requires, core_sha256, withdrawn = (
            row
        )
        links.append(
            Link(
                filename=file_name,
                url=f"{files_base}/projects/{project_id}/packages/pypi/files/{sha256}/{quote(file_name)}",
                sha256=sha256,
                requires_python=requires or stored_requires or "",
                core_metadata_sha256=(core_sha256 or "") if file_name.endswith(".whl") else "",
                size=size,
                upload_time=created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                version=version,
                yanked=_yank_reason(withdrawn),
            )
        )
    links.sort(key=lambda link: (_version_key(link.version), link.filename))
    return links


def _yank_reason(withdrawn):
    if isinstance(withdrawn, str):  # a JSON value read through a key lookup, on some databases
        try:
            withdrawn = json.loads(withdrawn)
        except ValueError:
            withdrawn = {}
    if not isinstance(withdrawn, dict):
        return None
    reason = withdrawn.get("reason")
    return reason if isinstance(reason, str) else ""


def page(title, anchors):
    """PEP 503 HTML: one anchor per line, every value escaped."""
    return (
        "<!DOCTYPE html>\n<html>\n"
        f'  <head><meta name="pypi:repository-version" content="{API_VERSION}"><title>Links for {escape(title)}'
        "</title></head>\n"
        f"  <body>\n    <h1>Links for {escape(title)}</h1>\n"
        + "".join(f"    {anchor}<br>\n" for anchor in anchors)
        + "  </body>\n</html>\n"
    )


def project_html(name, links):
    anchors = []
    for link in links:
        core = ""
        if link.core_metadata_sha256:
            value = escape(f"sha256={link.core_metadata_sha256}")
            core = f' data-dist-info-metadata="{value}" data-core-metadata="{value}"'
        yanked = f' data-yanked="{escape(link.yanked)}"' if link.yanked is not None else ""
        anchors.append(
            f'<a href="{escape(link.url)}#sha256={escape(link.sha256)}" '
            f'data-requires-python="{escape(link.requires_python)}"{core}{yanked}>{escape(link.filename)}</a>'
        )
    return page(name, anchors)


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
        entry["yanked"] = (link.yanked or True) if link.yanked is not None else False  # PEP 691
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
    return page(
        title, [f'<a href="{escape(base)}/{escape(normalized)}/">{escape(name)}</a>' for name, normalized in projects]
    )


def index_json(projects):
    document = {"meta": {"api-version": API_VERSION}, "projects": [{"name": name} for name, _ in projects]}
    return json.dumps(document, separators=(",", ":"))
