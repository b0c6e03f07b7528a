"""What a version's page shows about an npm version: its README (what the publish carried),
description, license, homepage / repository / issues links, dependencies by kind and the
package's dist-tags."""

from registry.formats import Dependency, DependencyGroup, VersionDetails

DEPENDENCY_KINDS = (
    ("dependencies", "Dependencies"),
    ("peerDependencies", "Peer dependencies"),
    ("optionalDependencies", "Optional dependencies"),
    ("devDependencies", "Development dependencies"),
)


def _license(value):
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value["type"]  # the old `{"type": "MIT", "url": ...}` form
    return ""


def _url(value):
    """A link from npm's string-or-object fields (`repository`, `bugs`): its `url`."""
    if isinstance(value, dict):
        value = value.get("url")
    if not isinstance(value, str):
        return None
    if value.startswith("git+"):
        value = value[len("git+") :]
    if value.endswith(".git"):
        value = value[: -len(".git")]
    return value


def details(metadata, readme, tags):
    """`metadata` the version's kept package.json fields, `readme` its README text, `tags`
    (tag, version) pairs of the package."""
    links = []
    for label, value in (
        ("Homepage", metadata.get("homepage")),
        ("Repository", _url(metadata.get("repository"))),
        ("Issues", _url(metadata.get("bugs"))),
    ):
        if isinstance(value, str) and value:
            links.append((label, value))
    groups = []
    for key, title in DEPENDENCY_KINDS:
        table = metadata.get(key)
        if isinstance(table, dict) and table:
            entries = [Dependency(str(name), str(spec)) for name, spec in sorted(table.items())]
            groups.append(DependencyGroup(title, entries))
    summary = metadata.get("description")
    return VersionDetails(
        summary=summary if isinstance(summary, str) else "",
        readme=readme,
        readme_markup="markdown",
        license=_license(metadata.get("license")),
        links=links,
        dependency_groups=groups,
        tags=sorted(tags),
    )
