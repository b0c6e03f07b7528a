from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST management API: users, groups, projects, members, tokens, jobs, packages and
    their settings, in GitLab's shapes. An outer layer over accounts and registry."""

    name = "api"
