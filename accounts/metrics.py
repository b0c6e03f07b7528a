"""Counters of the accounts layer, exposed by /-/metrics (registry.metrics) with every other
counter of the process (prometheus_client's multiprocess files; see PROMETHEUS_MULTIPROC_DIR)."""

from prometheus_client import Counter

AUTHENTICATION_FAILURES = Counter(
    "packhouse_authentication_failures_total",
    "Rejected credentials and failed web sign-ins, by reason",
    ["reason"],
)
DEPLOY_TOKENS = Counter(
    "packhouse_deploy_tokens_total",
    "Deploy tokens created and deleted (revoked), once per scope they carry",
    ["action", "scope"],
)


def deploy_token_changed(action, scopes):
    for scope in scopes:
        DEPLOY_TOKENS.labels(action=action, scope=scope).inc()
