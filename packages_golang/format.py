"""Go modules: uploaded as Gitea takes them, served over the GOPROXY protocol under
`…/packages/go/` (GitLab's mount; its API calls the package type `golang`). A version, once
uploaded, is never replaced (go.sum pins its hash)."""

from packages_golang import parsers
from registry.errors import Conflict, Invalid, RegistryError
from registry.formats import DuplicateRule, PackageFormat


class GolangFormat(PackageFormat):
    name = "golang"
    url_segment = "go"
    duplicate_rule = DuplicateRule.REJECT_VERSION
    project_urls = "packages_golang.urls_project"
    group_urls = "packages_golang.urls_group"
    label = "Go"
    max_name_length = parsers.MAX_PATH_LENGTH
    default_max_file_size = 100 * 1024 * 1024  # GitLab's golang_max_file_size

    def validate_name(self, name):
        if not parsers.valid_module_path(name):
            raise Invalid("400 Bad request - invalid module path")

    def validate_version(self, version):
        if not parsers.valid_version(version):
            raise Invalid("400 Bad request - invalid version: it must be v<semver>")

    def duplicate_error(self):
        return Conflict("409 Conflict - this module version is already uploaded")

    def error_response(self, error: RegistryError, request):
        """The go command prints the body of an error answer: plain text."""
        response = super().error_response(error, request)  # status and the 401 challenge
        response.content = error.message.encode() + b"\n"
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response

    def install_snippets(self, base, project, name, version, file_names=()):
        proxy = self.packages_url(base, project)
        zip_name = f"{name.rsplit('/', 1)[-1]}-{version}.zip"
        host = base.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        return [
            (
                "environment",
                f'export GOPROXY="{proxy}"\nexport GONOSUMDB="{name}"\n'
                f"# ~/.netrc\nmachine {host} login <username> password ${{TOKEN}}",
            ),
            ("go get", f"go get {name}@{version}"),
            (
                "upload (the module zip as `go mod download` caches it)",
                f'curl --header "PRIVATE-TOKEN: ${{TOKEN}}" --upload-file {zip_name} "{proxy}/upload"',
            ),
        ]
