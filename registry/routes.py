"""Routes of the package domain: the `<ref:...>` converter every layer's URLs use, and the mount
points of every registered format (registry.formats).

`project_ref`/`group_ref` is a numeric id or a full path; URL-encoded slashes arrive decoded,
so the reference may span several segments and ends at the format's fixed prefix.
"""

from django.urls import include, path, register_converter

from registry import formats


class RefConverter:
    """An id or a full path (`group/sub/project`): shortest run of segments that fits."""

    regex = r"[^/]+(?:/[^/]+)*?"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return str(value)


register_converter(RefConverter, "ref")


def format_patterns():
    patterns = []
    for fmt in formats.all_formats():
        if fmt.project_urls:
            patterns.append(path(f"api/v4/projects/<ref:project_ref>/packages/{fmt.mount}/", include(fmt.project_urls)))
        if fmt.project_root_urls:
            patterns.append(
                path(f"api/v4/projects/<ref:project_ref>/packages/{fmt.mount}", include(fmt.project_root_urls))
            )
        if fmt.group_urls:
            patterns.append(path(f"api/v4/groups/<ref:group_ref>/-/packages/{fmt.mount}/", include(fmt.group_urls)))
        if fmt.virtual_urls:
            patterns.append(
                path(
                    f"api/v4/virtual_registries/packages/{fmt.name}/<int:registry_id>/",
                    include(fmt.virtual_urls),
                )
            )
        if fmt.instance_urls:
            patterns.append(path(f"api/v4/packages/{fmt.mount}/", include(fmt.instance_urls)))
    return patterns + unknown_path_patterns()


def unknown_path_patterns():
    """Anything else under a format's prefixes is that format's own 404 (in its error shape),
    never a fall-through to the management API's routes."""
    from registry.views import unknown_format_path

    patterns = []
    for fmt in formats.all_formats():
        prefixes = []
        if fmt.project_urls or fmt.project_root_urls:
            prefixes.append(f"api/v4/projects/<ref:project_ref>/packages/{fmt.mount}/")
        if fmt.group_urls:
            prefixes.append(f"api/v4/groups/<ref:group_ref>/-/packages/{fmt.mount}/")
        if fmt.instance_urls:
            prefixes.append(f"api/v4/packages/{fmt.mount}/")
        for prefix in prefixes:
            patterns.append(path(f"{prefix}<path:rest>", unknown_format_path, {"format_name": fmt.name}))
    return patterns
