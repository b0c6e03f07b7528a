"""Routes of the registry's own endpoints: the cleanup policy API and its settings page.

Mounted by registry/urls.py after the format routes and before the management API, whose
bare `projects/<ref>` route would otherwise swallow `.../packages/cleanup_policy`.
"""

from django.urls import path

from registry import pages
from registry.api import cleanup_policy

urlpatterns = [
    path("api/v4/projects/<ref:project_ref>/packages/cleanup_policy", cleanup_policy.CleanupPolicyView.as_view()),
    path(
        "api/v4/projects/<ref:project_ref>/packages/cleanup_policy/dry_run",
        cleanup_policy.CleanupPolicyDryRunView.as_view(),
    ),
    path("<ref:project_ref>/-/settings/packages_and_registries/cleanup", pages.cleanup_policy_page),
]
