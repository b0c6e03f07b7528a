"""Access levels (GitLab's numbers) and the least level each action on a project needs."""

from django.db import models


class AccessLevel(models.IntegerChoices):
    NO_ACCESS = 0, "No access"
    MINIMAL_ACCESS = 5, "Minimal access"
    GUEST = 10, "Guest"
    PLANNER = 15, "Planner"
    REPORTER = 20, "Reporter"
    DEVELOPER = 30, "Developer"
    MAINTAINER = 40, "Maintainer"
    OWNER = 50, "Owner"


MEMBER_ACCESS_LEVELS = [level for level in AccessLevel if level >= AccessLevel.GUEST]

# Package actions on a project.
READ_PACKAGE = "read_package"
CREATE_PACKAGE = "create_package"
DESTROY_PACKAGE = "destroy_package"
DESTROY_PACKAGE_FILE = "destroy_package_file"
ADMIN_PACKAGE_SETTINGS = "admin_package_settings"
PACKAGE_ACTIONS = (
    READ_PACKAGE,
    CREATE_PACKAGE,
    DESTROY_PACKAGE,
    DESTROY_PACKAGE_FILE,
    ADMIN_PACKAGE_SETTINGS,
)
# Management actions (REST API): seeing a project/group, and administering it.
READ_PROJECT = "read_project"
ADMIN_PROJECT = "admin_project"  # members, deploy tokens, access tokens, job token allowlist
READ_GROUP = "read_group"
ADMIN_GROUP = "admin_group"  # group deploy tokens create/delete, group access tokens
READ_GROUP_TOKENS = "read_group_tokens"
READ_STATISTICS = "read_statistics"  # storage usage (GitLab: project statistics from Reporter)
# Creating things inside a group (GitLab's default project/subgroup creation level: Maintainer).
CREATE_PROJECT = "create_project"
CREATE_SUBGROUP = "create_subgroup"

# Least access level on a project for each action (pull has its own rule in the policy).
PROJECT_ACTION_LEVEL = {
    CREATE_PACKAGE: AccessLevel.DEVELOPER,
    DESTROY_PACKAGE: AccessLevel.MAINTAINER,
    DESTROY_PACKAGE_FILE: AccessLevel.MAINTAINER,
    ADMIN_PACKAGE_SETTINGS: AccessLevel.MAINTAINER,
    READ_PROJECT: AccessLevel.GUEST,
    ADMIN_PROJECT: AccessLevel.MAINTAINER,
    READ_STATISTICS: AccessLevel.REPORTER,
}
# Least access level on a group for each action.
GROUP_ACTION_LEVEL = {
    READ_GROUP: AccessLevel.GUEST,
    READ_GROUP_TOKENS: AccessLevel.MAINTAINER,
    CREATE_PROJECT: AccessLevel.MAINTAINER,
    CREATE_SUBGROUP: AccessLevel.MAINTAINER,
    ADMIN_GROUP: AccessLevel.OWNER,
    ADMIN_PACKAGE_SETTINGS: AccessLevel.OWNER,
    READ_STATISTICS: AccessLevel.OWNER,
}

# Actions a read-only credential (read_api scope, read_package_registry) may perform.
READ_ONLY_ACTIONS = frozenset({READ_PACKAGE, READ_PROJECT, READ_GROUP, READ_STATISTICS})

# Virtual registries of a top-level group (registry.policy.authorize_virtual_registry).
READ_VIRTUAL_REGISTRY = "read_virtual_registry"
ADMIN_VIRTUAL_REGISTRY = "admin_virtual_registry"  # registries, upstreams, order, cache, test
ADMIN_VIRTUAL_REGISTRY_CLEANUP = "admin_virtual_registry_cleanup"
ADMIN_VIRTUAL_REGISTRY_CLAIMS = "admin_virtual_registry_claims"  # list and release name claims
VIRTUAL_REGISTRY_ACTION_LEVEL = {
    READ_VIRTUAL_REGISTRY: AccessLevel.GUEST,
    ADMIN_VIRTUAL_REGISTRY: AccessLevel.MAINTAINER,
    ADMIN_VIRTUAL_REGISTRY_CLEANUP: AccessLevel.OWNER,
    ADMIN_VIRTUAL_REGISTRY_CLAIMS: AccessLevel.OWNER,
}
