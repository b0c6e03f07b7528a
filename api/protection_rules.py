"""Package protection rules (spec §4.6): `GET/POST /projects/:id/packages/protection/rules`,
`PATCH/DELETE .../:package_protection_rule_id`, Maintainer+ (ADMIN_PACKAGE_SETTINGS).

GitLab's fields and spellings (registry.protection). A bad value is 400 `{"error": ...}` (Grape's
wording); a rule that cannot exist (its pattern taken for that type, or neither level set) is
422 `{"message": {"error": ...}}`, as GitLab renders its service errors.
"""

from rest_framework import status
from rest_framework.response import Response

from accounts import roles
from api.base import ManagementView, not_found
from registry import protection


def rule_json(rule):
    return {
        "id": rule.pk,
        "project_id": rule.project_id,
        "package_name_pattern": rule.package_name_pattern,
        "package_type": rule.package_type,
        "minimum_access_level_for_push": protection.level_name(rule.minimum_access_level_for_push),
        "minimum_access_level_for_delete": protection.level_name(rule.minimum_access_level_for_delete),
    }


def _error(exc):
    if exc.status == 422:
        return Response({"message": {"error": str(exc)}}, status=422)
    return Response({"error": str(exc)}, status=exc.status)


def _fields(request):
    data = request.data
    if not hasattr(data, "keys"):
        raise protection.RuleError("the body must be an object")
    return {name: data.get(name) for name in data.keys()}


class ProtectionRulesView(ManagementView):
    def get(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PACKAGE_SETTINGS)
        return self.paginate(protection.rules_of(project), rule_json)

    def post(self, request, ref):
        project = self.get_project(ref, roles.ADMIN_PACKAGE_SETTINGS)
        try:
            rule = protection.create(project, protection.clean(_fields(request)))
        except protection.RuleError as exc:
            return _error(exc)
        return Response(rule_json(rule), status=status.HTTP_201_CREATED)


class ProtectionRuleDetailView(ManagementView):
    def rule(self, ref, rule_id):
        project = self.get_project(ref, roles.ADMIN_PACKAGE_SETTINGS)
        rule = protection.rules_of(project).filter(pk=rule_id).first()
        if rule is None:
            not_found("Package Protection Rule")
        return rule

    def patch(self, request, ref, rule_id):
        rule = self.rule(ref, rule_id)
        try:
            rule = protection.update(rule, protection.clean(_fields(request), partial=True))
        except protection.RuleError as exc:
            return _error(exc)
        return Response(rule_json(rule))

    def delete(self, request, ref, rule_id):
        protection.delete(self.rule(ref, rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
