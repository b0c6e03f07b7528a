"""Install snippets for a version's page: each format writes its own (PackageFormat.install_snippets),
filled with this server's URL and the project id."""

from registry import formats


def install_snippets(format_name, base, project, name, version, file_names=()):
    """A list of (title, text) for the package detail page; none for a format not installed."""
    package_format = formats.find(format_name)
    if package_format is None:
        return []
    return package_format.install_snippets(base, project, name, version, list(file_names))
