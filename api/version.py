"""GET /version: what GitLab answers there (`{"version": …, "revision": …}`), so that clients
asking the server's version (python-gitlab's `gl.version()`) get Packhouse's. Any signed-in
caller (a `read_user` token suffices, as on GitLab); anonymous 401."""

import subprocess
from functools import cache
from importlib import metadata

from django.conf import settings
from rest_framework.response import Response

from api.base import ManagementView


@cache
def revision():
    """PACKHOUSE_REVISION, else the checkout's commit, else "unknown"."""
    if settings.REVISION:
        return settings.REVISION
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() or "unknown"


@cache
def version():
    """The installed distribution's version (pyproject.toml's), or "unknown" when the checkout
    runs without being installed."""
    try:
        return metadata.version("packhouse")
    except metadata.PackageNotFoundError:
        return "unknown"


class VersionView(ManagementView):
    read_user_scope = True

    def get(self, request):
        return Response({"version": version(), "revision": revision()})
