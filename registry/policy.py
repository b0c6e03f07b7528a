"""THE permission rule: (principal, target, action) -> allowed, or 401 / 403 / 404.

Every endpoint asks here; nothing else decides visibility or permissions.

- anonymous and not allowed            -> 401 with a Basic challenge (clients then send credentials)
- authenticated, target not visible    -> 404
- visible, but role / scope / token reach / job-token allowlist forbids -> 403

`pullable_projects()` is the same pull rule expressed as one queryset, for group and instance
endpoints that aggregate packages; tests check that both spellings agree.
"""

from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import Q

from accounts import acting, roles
from accounts.models import (
    Group,
    JobTokenScopeLink,
    PackageRegistryAccess,
    Project,
    Visibility,
    active_memberships,
    group_access_level,
    has_membership_below,
    job_token_allowed,
    job_token_allowed_projects,
    project_access_level,
    project_access_levels,
)
from accounts.principals import ACCESS_TOKEN, ANONYMOUS_PRINCIPAL, DEPLOY_TOKEN, JOB_TOKEN
from accounts.roles import AccessLevel
from registry import protection
from registry.errors import Forbidden, NotFound, Unauthenticated

PACKAGE_READ_SCOPES = {"read_package_registry", "write_package_registry"}
# Actions a job token may never perform, whatever its user's role.
JOB_TOKEN_EXCLUDED = {roles.ADMIN_PACKAGE_SETTINGS, roles.ADMIN_PROJECT, roles.ADMIN_GROUP}


class NoMemory:
    """The `memory` policy functions use when nothing may be remembered (registry.access_cache
    provides one that remembers under the identity epochs)."""

    def remember(self, key, compute):
        return compute()


NO_MEMORY = NoMemory()


def _anyone_may_pull(project):
    return settings.ALLOW_ANYONE_TO_PULL_OPTION and project.allows_anyone_to_pull


def _scope_allows(principal, action):
    """What the credential itself allows, before roles are looked at."""
    if principal.kind == ACCESS_TOKEN:
        if "api" in principal.scopes:
            return True
        return "read_api" in principal.scopes and action in roles.READ_ONLY_ACTIONS
    if principal.kind == DEPLOY_TOKEN:
        if action == roles.READ_PACKAGE:
            return bool(principal.scopes & PACKAGE_READ_SCOPES)
        if action == roles.CREATE_PACKAGE:
            return "write_package_registry" in principal.scopes
        return action in (roles.READ_PROJECT, roles.READ_GROUP)
    if principal.kind == JOB_TOKEN:
        return action not in JOB_TOKEN_EXCLUDED
    return True


def _level_key(user_id, project_id):
    return ("project-level", user_id, project_id)


def _allowlist_key(job_project_id, project_id):
    return ("job-allowlisted", job_project_id, project_id)


class ProjectAccess:
    """The facts about one principal and one project that every decision needs."""

    def __init__(self, principal, project, memory=NO_MEMORY):
        self.principal = principal
        self.project = project
        self.memory = memory
        user = principal.user
        self.level = (
            memory.remember(_level_key(user.pk, project.pk), lambda: project_access_level(user, project)) if user else 0
        )

    @property
    def registry_level(self):
        return self.project.package_registry_access_level

    def visible(self):
        """Whether the project (or at least its package registry) exists for this principal."""
        principal, project = self.principal, self.project
        if _anyone_may_pull(project) or project.visibility == Visibility.PUBLIC:
            return True
        if principal.kind == DEPLOY_TOKEN:
            return principal.deploy_token.reaches(project)
        if principal.user is None:
            return False
        internal_to_user = project.visibility == Visibility.INTERNAL and not principal.user.is_external
        if principal.kind == JOB_TOKEN and not self.job_allowlisted():
            return internal_to_user
        return principal.is_admin or internal_to_user or self.level >= AccessLevel.GUEST

    def job_allowlisted(self):
        job_project, project = self.principal.job.project, self.project
        return self.memory.remember(
            _allowlist_key(job_project.pk, project.pk), lambda: job_token_allowed(job_project, project)
        )

    def allowed(self, action):
        principal, project = self.principal, self.project
        if not _scope_allows(principal, action):
            return False
        if action in roles.PACKAGE_ACTIONS and self.registry_level == PackageRegistryAccess.DISABLED:
            return False
        if action == roles.READ_PROJECT:
            return self.visible()
        if principal.kind == DEPLOY_TOKEN:
            if action == roles.READ_PACKAGE and self._public_pull():
                return True
            return principal.deploy_token.reaches(project)
        if action == roles.READ_PACKAGE:
            return self._can_pull()
        if principal.kind == JOB_TOKEN and not self.job_allowlisted():
            return False
        if principal.is_admin:
            return True
        return self.level >= roles.PROJECT_ACTION_LEVEL[action]

    def _public_pull(self):
        """Pull open to everyone who can see the project (anonymous included on public)."""
        project = self.project
        if _anyone_may_pull(project):
            return True
        return project.visibility == Visibility.PUBLIC and self.registry_level == PackageRegistryAccess.ENABLED

    def _can_pull(self):
        principal, project = self.principal, self.project
        if self._public_pull():
            return True
        if principal.user is None:
            return False
        if principal.kind == JOB_TOKEN and not self.job_allowlisted():
            # A job from another project reads public/internal registries, never private ones.
            return (
                project.visibility == Visibility.INTERNAL
                and self.registry_level == PackageRegistryAccess.ENABLED
                and not principal.user.is_external
            )
        if principal.is_admin:
            return True
        if (
            self.registry_level == PackageRegistryAccess.ENABLED
            and project.visibility == Visibility.INTERNAL
            and not principal.user.is_external
        ):
            return True
        return self.level >= settings.MIN_PULL_ACCESS_LEVEL


def can(principal, project, action, memory=NO_MEMORY):
    return ProjectAccess(principal, project, memory).allowed(action)


class _Known:
    """A `memory` holding facts read in bulk beforehand; anything else is computed."""

    def __init__(self, facts):
        self.facts = facts

    def remember(self, key, compute):
        return self.facts[key] if key in self.facts else compute()


def can_each(principal, projects, action):
    """{project id: `can`} for several projects (their groups loaded), the facts the rule needs
    (the caller's levels, a job token's allowlist) read in one query each whatever their number."""
    projects = list({project.pk: project for project in projects}.values())
    facts = {}
    user = principal.user
    if user is not None:
        levels = project_access_levels(user, projects)
        facts.update({_level_key(user.pk, pk): level for pk, level in levels.items()})
    if principal.kind == JOB_TOKEN:
        job_project = principal.job.project
        allowed = job_token_allowed_projects(job_project, projects)
        facts.update({_allowlist_key(job_project.pk, p.pk): p.pk in allowed for p in projects})
    memory = _Known(facts)
    return {project.pk: ProjectAccess(principal, project, memory).allowed(action) for project in projects}


def authorize(principal, project, action, memory=NO_MEMORY):
    """Allow, or raise the one right error for this principal, project and action."""
    access = ProjectAccess(principal, project, memory)
    if access.allowed(action):
        acting.grant(access, action)
        return access
    if action in roles.PACKAGE_ACTIONS and access.registry_level == PackageRegistryAccess.DISABLED and access.visible():
        # A disabled package registry does not exist for whoever sees the project.
        raise NotFound("404 Not Found")
    if principal.is_anonymous:
        raise Unauthenticated()
    if not access.visible():
        raise NotFound("404 Project Not Found")
    raise Forbidden()


DELETE_ACTIONS = (roles.DESTROY_PACKAGE, roles.DESTROY_PACKAGE_FILE)


def protection_refuses(access, package, operation):
    """Whether a protection rule (registry.protection) keeps `access`'s principal from the
    `operation` (protection.PUSH or DELETE) on `package`: its level is below the strictest
    covering rule's level for it, or it is a deploy token pushing. A job token has its user's
    level (never an administrator's: Principal.is_admin)."""
    needed = protection.required_level(protection.rules_covering(package), operation)
    if needed is None:
        return False
    principal = access.principal
    if principal.kind == DEPLOY_TOKEN:
        return True
    level = protection.ADMIN if principal.is_admin else access.level
    return level < needed


def authorize_package_change(package):
    """Allow the current request's change to `package`, or raise 403 `Package protected.`.

    The write service asks this on every write, in its transaction (a refusal rolls the write
    back), so every publish, tag, deprecation and deletion of every format is decided here. The
    operation is the action the request was authorized for on the package's project
    (accounts.acting): a delete action is checked against the rules' delete level, anything else
    against their push level. Outside a request (tasks, commands) nothing is refused here; a
    request that writes to a project it was never authorized on is refused."""
    record = acting.current()
    if record is None or record.system:
        return
    grant = record.grants.get(package.project_id)
    if grant is None:
        raise Forbidden()
    operation = protection.DELETE if grant.action in DELETE_ACTIONS else protection.PUSH
    if protection_refuses(grant.access, package, operation):
        raise Forbidden(protection.MESSAGE)


def deny_unknown(principal, what="Project"):
    """The answer when the target does not exist: same as hidden, so nothing is revealed."""
    if principal.is_anonymous:
        raise Unauthenticated()
    raise NotFound(f"404 {what} Not Found")


# --- groups -------------------------------------------------------------------------------


def group_visible(principal, group, memory=NO_MEMORY):
    if principal.is_admin or group.visibility == Visibility.PUBLIC:
        return True
    if principal.kind == DEPLOY_TOKEN:
        token = principal.deploy_token
        return token.group_id is not None and token.group_id in group.traversal_ids
    user = principal.user
    if user is None:
        return False
    if group.visibility == Visibility.INTERNAL and not user.is_external:
        return True
    return _group_level(user, group, memory) >= AccessLevel.GUEST or memory.remember(
        ("member-below", user.pk, group.pk), lambda: has_membership_below(user, group)
    )


def _group_level(user, group, memory):
    return memory.remember(("group-level", user.pk, group.pk), lambda: group_access_level(user, group))


def authorize_group(principal, group, action, memory=NO_MEMORY):
    """Group-level actions: READ_GROUP / READ_PACKAGE (aggregated pulls), admin ones by role."""
    if not _scope_allows(principal, action):
        allowed = False
    elif action in (roles.READ_GROUP, roles.READ_PACKAGE):
        allowed = group_visible(principal, group, memory) or (
            action == roles.READ_PACKAGE and pullable_projects(principal, group).exists()
        )
    elif principal.kind in (DEPLOY_TOKEN, JOB_TOKEN):
        allowed = False
    else:
        level = _group_level(principal.user, group, memory)
        allowed = principal.is_admin or level >= roles.GROUP_ACTION_LEVEL[action]
    if allowed:
        return
    if principal.is_anonymous:
        raise Unauthenticated()
    if not group_visible(principal, group, memory):
        raise NotFound("404 Group Not Found")
    raise Forbidden()


def _under(group):
    return Q(group_id=group.pk) | Q(full_path__startswith=f"{group.full_path}/")


def projects_under(group):
    """Every project in the group or any of its subgroups."""
    return Project.objects.filter(_under(group))


def group_may(principal, group, action):
    """Whether authorize_group allows `action` (no error raised)."""
    try:
        authorize_group(principal, group, action)
    except (Unauthenticated, NotFound, Forbidden):
        return False
    return True


def _member_projects(user, min_level):
    """Projects where the user's effective level is at least `min_level`, as a Q."""
    memberships = active_memberships(user).filter(access_level__gte=min_level)
    group_paths = list(memberships.filter(group__isnull=False).values_list("group__full_path", flat=True))
    project_ids = list(memberships.filter(project__isnull=False).values_list("project_id", flat=True))
    clauses = [Q(pk__in=project_ids), Q(namespace_owner=user)]
    clauses += [Q(full_path__startswith=f"{path}/") for path in group_paths]
    return reduce(or_, clauses)


def pullable_projects(principal, group=None):
    """Every project (under `group`, or on the instance) whose packages the principal may pull."""
    projects = Project.objects.exclude(package_registry_access_level=PackageRegistryAccess.DISABLED)
    if group is not None:
        projects = projects.filter(_under(group))
    if not _scope_allows(principal, roles.READ_PACKAGE):
        return projects.none()
    public_pull = Q(visibility=Visibility.PUBLIC, package_registry_access_level="enabled")
    if settings.ALLOW_ANYONE_TO_PULL_OPTION:
        public_pull |= Q(package_registry_access_level=PackageRegistryAccess.PUBLIC)
    if principal.kind == DEPLOY_TOKEN:
        token = principal.deploy_token
        reach = Q(pk=token.project_id) if token.project_id else _under(token.group)
        return projects.filter(public_pull | reach)
    user = principal.user
    if user is None:
        return projects.filter(public_pull)
    enabled = Q(package_registry_access_level=PackageRegistryAccess.ENABLED)
    internal_to_user = Q(pk__in=[]) if user.is_external else enabled & Q(visibility="internal")
    if principal.is_admin:
        rule = Q()
    else:
        rule = public_pull | internal_to_user | _member_projects(user, settings.MIN_PULL_ACCESS_LEVEL)
    if principal.kind == JOB_TOKEN:
        job_project = principal.job.project
        allowlisted = JobTokenScopeLink.objects.filter(
            Q(target_project_id=job_project.pk) | Q(target_group_id__in=job_project.group_ids)
        ).values("source_project_id")
        rule &= (
            Q(pk=job_project.pk)
            | Q(ci_job_token_scope_enabled=False)
            | Q(pk__in=allowlisted)
            | public_pull
            | internal_to_user
        )
    return projects.filter(rule)


def anonymous_pulls_everything(group):
    """Whether a caller without credentials may pull from every project under `group` whose
    package registry is on (so that its aggregated endpoints need no credential at all)."""
    projects = Project.objects.exclude(package_registry_access_level=PackageRegistryAccess.DISABLED)
    anonymous = pullable_projects(ANONYMOUS_PRINCIPAL, group).values("pk")
    return not projects.filter(_under(group)).exclude(pk__in=anonymous).exists()


def resolve_group(ref, memory=NO_MEMORY):
    """A group by numeric id or (URL-decoded) full path; None when there is none."""
    return memory.remember(("group", ref.lower()), lambda: _find_group(ref))


def numeric_id(ref):
    """`ref` as a row id when it is one: ASCII digits only (`²`, `①` or Arabic-Indic digits are
    no id) and within a database integer; None otherwise."""
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:
        return int(ref)
    return None


def _find_group(ref):
    if not ref.isprintable():  # no path holds a control character (and PostgreSQL refuses NUL)
        return None
    if (pk := numeric_id(ref)) is not None:
        return Group.objects.filter(pk=pk).first()
    return Group.objects.filter(full_path__iexact=ref).first()


def resolve_project(ref, memory=NO_MEMORY):
    """A project by numeric id or (URL-decoded) full path; None when there is none."""
    return memory.remember(("project", ref.lower()), lambda: _find_project(ref))


def _find_project(ref):
    if not ref.isprintable():  # no path holds a control character (and PostgreSQL refuses NUL)
        return None
    queryset = Project.objects.select_related("group", "namespace_owner")
    if (pk := numeric_id(ref)) is not None:
        return queryset.filter(pk=pk).first()
    return queryset.filter(full_path__iexact=ref).first()


# --- lists: the visibility rule above, spelled as one query each --------------------------
# (tests/accounts/test_api_visibility.py checks they agree with ProjectAccess.visible and
# group_visible on a matrix of principals and targets.)


def _visible_to_everyone():
    rule = Q(visibility=Visibility.PUBLIC)
    if settings.ALLOW_ANYONE_TO_PULL_OPTION:
        rule |= Q(package_registry_access_level=PackageRegistryAccess.PUBLIC)
    return rule


def visible_projects(principal):
    projects = Project.objects.select_related("group", "namespace_owner").order_by("id")
    rule = _visible_to_everyone()
    if principal.kind == DEPLOY_TOKEN:
        token = principal.deploy_token
        reach = Q(pk=token.project_id) if token.project_id else Q(full_path__startswith=f"{token.group.full_path}/")
        return projects.filter(rule | reach)
    user = principal.user
    if user is None:
        return projects.filter(rule)
    if principal.is_admin:
        return projects
    if not user.is_external:
        rule |= Q(visibility=Visibility.INTERNAL)
    memberships = active_memberships(user)
    group_paths = memberships.filter(group__isnull=False).values_list("group__full_path", flat=True)
    clauses = [
        rule,
        Q(pk__in=memberships.filter(project__isnull=False).values("project_id")),
        Q(namespace_owner=user),
    ]
    clauses += [Q(full_path__startswith=f"{path}/") for path in group_paths]
    return projects.filter(reduce(or_, clauses))


def visible_groups(principal):
    groups = Group.objects.order_by("id")
    rule = Q(visibility=Visibility.PUBLIC)
    if principal.kind == DEPLOY_TOKEN:
        token = principal.deploy_token
        if token.group_id is None:
            return groups.filter(rule)
        return groups.filter(rule | Q(pk=token.group_id) | Q(full_path__startswith=f"{token.group.full_path}/"))
    user = principal.user
    if user is None:
        return groups.filter(rule)
    if principal.is_admin:
        return groups
    if not user.is_external:
        rule |= Q(visibility=Visibility.INTERNAL)
    memberships = active_memberships(user).select_related("group", "project__group")
    clauses = [rule]
    ancestor_ids = set()
    for membership in memberships:
        if membership.group_id:
            # Members see the group, everything below it, and its ancestors.
            clauses.append(Q(full_path__startswith=f"{membership.group.full_path}/"))
            ancestor_ids.update(membership.group.traversal_ids)
        elif membership.project.group_id:
            ancestor_ids.update(membership.project.group.traversal_ids)
    clauses.append(Q(pk__in=ancestor_ids))
    return groups.filter(reduce(or_, clauses))


# --- virtual registries ---------------------------------------------------------------------
# (spec/virtual-registries.md §1.1, §2) Read: instance admins, Guest+ members of the top-level
# group, members of anything inside it; writes Maintainer+, the cleanup policy Owner. Anonymous
# 401; an authenticated non-member 404 (even on a public group); a subgroup is no target (404).

VIRTUAL_READ_SCOPES = {"api", "read_api", "read_virtual_registry", "write_virtual_registry"}
VIRTUAL_WRITE_SCOPES = {"api", "write_virtual_registry"}


def _virtual_scope_allows(principal, action, group):
    if principal.kind == ACCESS_TOKEN:
        scopes = VIRTUAL_READ_SCOPES if action == roles.READ_VIRTUAL_REGISTRY else VIRTUAL_WRITE_SCOPES
        return bool(principal.scopes & scopes)
    if principal.kind == DEPLOY_TOKEN:
        token = principal.deploy_token
        if token.group_id != group.pk:
            return False
        if action == roles.READ_VIRTUAL_REGISTRY:
            return bool(principal.scopes & {"read_virtual_registry", "write_virtual_registry"})
        return action == roles.ADMIN_VIRTUAL_REGISTRY and "write_virtual_registry" in principal.scopes
    return True


def virtual_registry_member(principal, group, memory=NO_MEMORY):
    """Whether the principal belongs to the top-level group's virtual registries at all."""
    if principal.is_admin:
        return True
    if principal.kind == DEPLOY_TOKEN:
        return principal.deploy_token.group_id == group.pk
    user = principal.user
    if user is None:
        return False
    return _group_level(user, group, memory) >= AccessLevel.GUEST or memory.remember(
        ("member-below", user.pk, group.pk), lambda: has_membership_below(user, group)
    )


def authorize_virtual_registry(principal, group, action, memory=NO_MEMORY):
    """Allow `action` on the virtual registries of `group`, or raise the one right error."""
    if principal.is_anonymous:
        raise Unauthenticated()
    if group.parent_id is not None or not virtual_registry_member(principal, group, memory):
        raise NotFound("404 Not Found")
    if not _virtual_scope_allows(principal, action, group):
        raise Forbidden("403 Forbidden - insufficient_scope")
    if principal.kind == DEPLOY_TOKEN or principal.is_admin:
        return
    if principal.kind == JOB_TOKEN and action != roles.READ_VIRTUAL_REGISTRY:
        raise Forbidden()
    level = _group_level(principal.user, group, memory)
    if action != roles.READ_VIRTUAL_REGISTRY and level < roles.VIRTUAL_REGISTRY_ACTION_LEVEL[action]:
        raise Forbidden()
