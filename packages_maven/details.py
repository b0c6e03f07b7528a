"""What a version's page shows about a Maven artifact version, from its POM (the `.pom` file
uploaded with it): description, licenses, project URL and SCM link, and dependencies by scope.
A POM that cannot be read shows nothing rather than failing the page."""

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError

from packages_maven import parsers
from registry.errors import Invalid
from registry.formats import Dependency, DependencyGroup, VersionDetails


def _local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element, name):
    if element is None:
        return None
    return next((child for child in element if _local(child.tag) == name), None)


def _children(element, name):
    return [child for child in element if _local(child.tag) == name] if element is not None else []


def _text(element, name):
    child = _child(element, name)
    return " ".join((child.text or "").split()) if child is not None else ""


def details(pom_bytes):
    """VersionDetails from the bytes of a POM (None: no POM)."""
    if not pom_bytes:
        return VersionDetails()
    try:
        project = parsers.check_xml(pom_bytes, "project", "POM")
    except (Invalid, DefusedXmlException, ParseError, ValueError):
        return VersionDetails()
    licenses = [_text(license, "name") for license in _children(_child(project, "licenses"), "license")]
    links = []
    if _text(project, "url"):
        links.append(("Project", _text(project, "url")))
    scm_url = _text(_child(project, "scm"), "url")
    if scm_url:
        links.append(("Source", scm_url))
    for license in _children(_child(project, "licenses"), "license"):
        if _text(license, "url"):
            links.append((f"License: {_text(license, 'name') or 'text'}", _text(license, "url")))
    by_scope = {}
    for dependency in _children(_child(project, "dependencies"), "dependency"):
        coordinates = f"{_text(dependency, 'groupId')}:{_text(dependency, 'artifactId')}"
        scope = _text(dependency, "scope") or "compile"
        if _text(dependency, "optional") == "true":
            scope = f"{scope} (optional)"
        by_scope.setdefault(scope, []).append(Dependency(coordinates, _text(dependency, "version")))
    return VersionDetails(
        summary=_text(project, "name"),
        readme=(_child(project, "description").text or "").strip()
        if _child(project, "description") is not None
        else "",
        readme_markup="text",
        license=", ".join(name for name in licenses if name),
        links=links,
        dependency_groups=[DependencyGroup(scope, entries) for scope, entries in by_scope.items()],
    )
