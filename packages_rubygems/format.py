"""RubyGems: gems pushed with `gem push`, served to `gem` (legacy and compact index) and Bundler.
A version, once pushed, is never pushed again, yanked or not (rubygems.org: 409)."""

from packages_rubygems import parsers
from registry.errors import Conflict, Invalid, RegistryError
from registry.formats import DuplicateRule, PackageFormat


class RubygemsFormat(PackageFormat):
    name = "rubygems"
    duplicate_rule = DuplicateRule.REJECT_VERSION
    project_urls = "packages_rubygems.urls_project"
    label = "RubyGems"
    default_max_file_size = 3 * 1024 * 1024 * 1024  # GitLab's rubygems_max_file_size

    def validate_name(self, name):
        if not parsers.valid_name(name):
            raise Invalid("400 Bad request - invalid gem name")

    def validate_version(self, version):
        if not parsers.valid_version(version):
            raise Invalid("400 Bad request - invalid gem version")

    # `gem yank`: the version leaves every index (`gem` and Bundler no longer see it) while its
    # `.gem` stays downloadable for lockfiles that name it; it is never pushed again. `gem` has no
    # unyank; a Maintainer may undo a yank on the version's page or through the REST API.
    # `gem yank` and those alike go through registry.services.set_withdrawn.
    withdrawal = "yank"
    withdrawal_undone = "unyank"

    def duplicate_error(self):
        return Conflict("Repushing of gem versions is not allowed. Please use `gem yank` to remove bad gem releases.")

    def error_response(self, error: RegistryError, request):
        """`gem` and Bundler print the body as it is: plain text."""
        response = super().error_response(error, request)  # status and the 401 challenge
        response.content = error.message.encode()
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response

    def install_snippets(self, base, project, name, version, file_names=()):
        source = self.packages_url(base, project)
        host, _, path = source.partition("://")
        gem_version = version.split("-", 1)[0]
        return [
            ("gem install", f'gem install {name} -v {gem_version} --source "{host}://<username>:${{TOKEN}}@{path}"'),
            ("Gemfile", f'source "{source}" do\n  gem "{name}", "{gem_version}"\nend'),
            ("bundle config", f"bundle config set --global {source} <username>:${{TOKEN}}"),
            ("gem push", f"GEM_HOST_API_KEY=${{TOKEN}} gem push {name}-{version}.gem --host {source}"),
        ]
