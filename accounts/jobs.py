"""Starting and finishing CI jobs: the one code path for the API and `manage.py ci_job`.

A job's token is minted when the job starts, handed out once, and stored only as a digest.
Finishing a job (whatever the outcome) kills the token: authentication refuses tokens of
jobs that are not running.
"""

from django.db import transaction
from django.utils import timezone

from accounts import audit, tokens
from accounts.models import CiJob
from accounts.signals import credential_changed, credential_changing

FINAL_STATUSES = (CiJob.Status.SUCCESS, CiJob.Status.FAILED, CiJob.Status.CANCELED)


def start_job(project, user, name="job", ref="main"):
    """Create a running job; returns (job, plaintext token). The token is never stored."""
    token = tokens.mint(tokens.JOB_PREFIX)
    with transaction.atomic():
        job = CiJob.objects.create(
            project=project,
            user=user,
            name=name or "job",
            ref=ref or "main",
            status=CiJob.Status.RUNNING,
            token_digest=tokens.digest(token),
            started_at=timezone.now(),
        )
    return job, token


def finish_job(job, status=CiJob.Status.SUCCESS):
    """Mark a running job finished; its token stops authenticating at once. Returns the job.

    Finishing an already finished job changes nothing (the first outcome stands)."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"{status!r} is not a final job status")
    with transaction.atomic():
        updated = CiJob.objects.filter(pk=job.pk, status=CiJob.Status.RUNNING).update(
            status=status, finished_at=timezone.now()
        )
        if updated and job.token_digest:
            # Inside the transaction: a receiver that cannot pass it on rolls the finish back.
            credential_changing.send(sender=CiJob, digests=[job.token_digest])
            credential_changed.send(sender=CiJob, digests=[job.token_digest])
        if updated:
            job.status = status
            audit.job_finished(job)
    job.refresh_from_db()
    job.finished_now = bool(updated)
    return job
