"""Secrets never reach a log: tokens in query strings, in a referer, in any parameter named like a
secret, and in messages the application logs are redacted (accounts.redaction)."""

import logging
import subprocess

import pytest

from accounts.redaction import REDACTED, RedactSecretsFilter, redact
from tests.factories import AccessTokenFactory, ProjectFactory

PAT = "glpat-Oo5P2gWM_YIzdTw7fRSTjbji3ao"


@pytest.mark.parametrize(
    "text",
    [
        f"/api/v4/projects/1/packages/generic/a/1/a?private_token={PAT}",
        "/api/v4/job?job_token=glcbt-64_abcDEF123&x=1",
        "/x?deploy=gldt-abc123def456",
        "/x?password=hunter2",
        "/x?API_KEY=s3cr3t&page=2",
        f"Authorization: Bearer {PAT}",
    ],
)
def test_every_spelling_of_a_secret_is_redacted(text):
    redacted = redact(text)
    assert REDACTED in redacted
    for secret in (PAT, "glcbt-64_abcDEF123", "gldt-abc123def456", "hunter2", "s3cr3t"):
        assert secret not in redacted


def test_what_is_not_secret_stays_readable():
    text = "/api/v4/projects/1/packages?page=2&per_page=20&package_name=token-tools"
    assert redact(text) == text


def test_the_log_filter_redacts_messages_and_their_arguments():
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "refused %s for %s", ("/a?private_token=" + PAT, 3), None
    )
    RedactSecretsFilter().filter(record)
    assert PAT not in record.getMessage() and REDACTED in record.getMessage()


@pytest.mark.client
@pytest.mark.django_db(transaction=True)
def test_the_access_log_of_a_live_server_holds_no_token(live_registry):
    project = ProjectFactory(visibility="private")
    token = AccessTokenFactory().plaintext
    url = live_registry.api(f"projects/{project.pk}/packages/generic/a/1.0/a.bin")
    for query in (f"private_token={token}", f"job_token={token}", f"anything={token}"):
        subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-H", f"Referer: http://x/?t={token}", f"{url}?{query}"],
            check=True,
            timeout=30,
        )
    log = live_registry.log()
    assert f"/packages/generic/a/1.0/a.bin?private_token={REDACTED}" in log
    assert token not in log
