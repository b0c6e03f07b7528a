from registry import apps


class RubygemsConfig(apps.FormatAppConfig):
    name = "packages_rubygems"
    format_class = "packages_rubygems.format.RubygemsFormat"
