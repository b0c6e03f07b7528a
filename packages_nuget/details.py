"""What a version's page shows about a NuGet package: its README file (Markdown, as nuget.org
renders it) or else its description, summary, license (an expression, or the license URL),
project URL and dependencies per target framework."""

from registry.formats import Dependency, DependencyGroup, VersionDetails


def details(metadatum):
    """`metadatum` the version's NugetMetadatum (None for a version without one)."""
    if metadatum is None:
        return VersionDetails()
    links = []
    if metadatum.project_url:
        links.append(("Project", metadatum.project_url))
    if metadatum.license_url:
        links.append(("License", metadatum.license_url))
    groups = []
    for group in metadatum.dependency_groups or []:
        entries = [Dependency(dep.get("id", ""), dep.get("range", "")) for dep in group.get("dependencies") or []]
        if entries:
            groups.append(DependencyGroup(group.get("targetFramework") or "All frameworks", entries))
    if metadatum.readme:
        readme, markup = metadatum.readme, "markdown"
    else:
        readme, markup = metadatum.description, "text"
    return VersionDetails(
        summary=metadatum.summary or (metadatum.description if metadatum.readme else ""),
        readme=readme,
        readme_markup=markup,
        license=metadatum.license,
        links=links,
        dependency_groups=groups,
    )
