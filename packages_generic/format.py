"""Generic packages: any file under a name and a version, uploaded with curl."""

import re

from registry.errors import Invalid
from registry.formats import DuplicateRule, PackageFormat

# Code's rule plus the documented `@`; neither `~` nor `@` at either end; no `..`, no `.` alone.
FILE_SEGMENT = re.compile(r"^(?![~@])[A-Za-z0-9._+~@-]+(?<![~@.])\Z")
MAX_FILE_PATH = 1024
MAX_FILE_NAME = 255  # each segment, as on every filesystem


class GenericFormat(PackageFormat):
    name = "generic"
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    project_urls = "packages_generic.urls_project"
    label = "Generic"
    # Names and versions end with a letter, a digit or `_+-`: a trailing dot is refused.
    name_pattern = re.compile(r"^[A-Za-z0-9._+-]*[A-Za-z0-9_+-]\Z")
    version_pattern = re.compile(r"^(?!.*\.\.)[\w+.-]*[\w+-]\Z", re.ASCII)
    default_max_file_size = 5 * 1024 * 1024 * 1024

    def validate_file_path(self, file_path):
        """`file.tar.gz` or `sub/dir/file.tar.gz`; every segment checked, nothing relative."""
        if not file_path or len(file_path) > MAX_FILE_PATH:
            raise Invalid("400 Bad request - file_name is invalid")
        for segment in file_path.split("/"):
            if segment in ("", ".", "..") or len(segment) > MAX_FILE_NAME or not FILE_SEGMENT.match(segment):
                raise Invalid("400 Bad request - file_name is invalid")

    def install_snippets(self, base, project, name, version, file_names=()):
        file_name = file_names[0] if file_names else "file.tar.gz"
        url = f"{self.packages_url(base, project)}/{name}/{version}/{file_name}"
        return [
            ("curl", f'curl --header "PRIVATE-TOKEN: ${{TOKEN}}" \\\n  "{url}" \\\n  --output {file_name}'),
            (
                "curl (upload)",
                f'curl --header "PRIVATE-TOKEN: ${{TOKEN}}" --upload-file {file_name} \\\n  "{url}"',
            ),
        ]
