"""What a version's page shows about a PyPI release, from its core metadata (METADATA /
PKG-INFO, as the distribution carries it): Summary, the long description in the markup its
Description-Content-Type names (reStructuredText when none, as PyPI does), License (or
License-Expression), Home-page and Project-URL links, and Requires-Dist."""

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement

from registry.formats import Dependency, DependencyGroup, VersionDetails

MARKUPS = {"text/markdown": "markdown", "text/x-rst": "rst", "text/plain": "text"}


def markup_of(content_type):
    """The markup a Description-Content-Type names (`text/markdown; charset=UTF-8; variant=GFM`)."""
    if not content_type:
        return "rst"
    return MARKUPS.get(content_type.split(";", 1)[0].strip().lower(), "text")


def _dependency(line):
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return Dependency(line, "")
    spec = str(requirement.specifier)
    if requirement.extras:
        spec = f"[{','.join(sorted(requirement.extras))}] {spec}".strip()
    if requirement.marker is not None:
        spec = f"{spec}; {requirement.marker}".strip("; ").strip()
    return Dependency(requirement.name, spec)


def details(core_metadata):
    raw, _unparsed = parse_email(core_metadata or "")
    links = []
    if raw.get("home_page"):
        links.append(("Homepage", raw["home_page"]))
    for label, url in (raw.get("project_urls") or {}).items():
        links.append((label, url))
    requires = raw.get("requires_dist") or []
    groups = [DependencyGroup("Requires-Dist", [_dependency(line) for line in requires])] if requires else []
    return VersionDetails(
        summary=raw.get("summary") or "",
        readme=raw.get("description") or "",
        readme_markup=markup_of(raw.get("description_content_type")),
        license=raw.get("license_expression") or raw.get("license") or "",
        links=links,
        dependency_groups=groups,
    )
