"""Generic packages: any file under a name and a version, uploaded with curl."""

import re

from registry.errors import Invalid
from registry.formats import DuplicateRule, PackageFormat

# Code's rule plus the documented `@`; neither `~` nor `@` at either end; no `..`, no `.` alone.
FILE_SEGMENT = re.compile(r"^(?![~@])[A-Za-z0-9._+~@-]+(?<![~@])$")
MAX_FILE_PATH = 1024


class GenericFormat(PackageFormat):
    name = "generic"
    duplicate_rule = DuplicateRule.PROJECT_SETTING
    project_urls = "packages_generic.urls"

    def validate_file_path(self, file_path):
        """`file.tar.gz` or `sub/dir/file.tar.gz`; every segment checked, nothing relative."""
        if not file_path or len(file_path) > MAX_FILE_PATH:
            raise Invalid("400 Bad request - file_name is invalid")
        for segment in file_path.split("/"):
            if segment in ("", ".", "..") or not FILE_SEGMENT.match(segment):
                raise Invalid("400 Bad request - file_name is invalid")
