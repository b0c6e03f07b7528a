"""Which projects and groups a principal sees, as querysets for list endpoints.

These are the policy's visibility rules (`registry.policy.ProjectAccess.visible` and
`registry.policy.group_visible`) spelled as one query each; tests/accounts/test_api_visibility.py
checks both spellings agree on a matrix of principals and targets. Single objects are always
decided by the policy itself.
"""

from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import Q

from accounts.models import Group, PackageRegistryAccess, Project, Visibility, active_memberships
from accounts.principals import DEPLOY_TOKEN


def _public_projects():
    rule = Q(visibility=Visibility.PUBLIC)
    if settings.ALLOW_ANYONE_TO_PULL_OPTION:
        rule |= Q(package_registry_access_level=PackageRegistryAccess.PUBLIC)
    return rule


def visible_projects(principal):
    projects = Project.objects.select_related("group", "namespace_owner").order_by("id")
    rule = _public_projects()
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
