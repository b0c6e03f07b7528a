"""Run a command as a CI job: `manage.py ci_job run --project PATH --user NAME -- COMMAND...`.

Starts a running CiJob (accounts.jobs.start_job, the API's code path), runs COMMAND with
GitLab's CI variables (CI_JOB_TOKEN, CI_API_V4_URL, ...), streams its output with the token
replaced by [MASKED], always finishes the job (success on exit 0, failed otherwise, also on
errors and Ctrl-C) and exits with the command's exit code.
"""

import os
import subprocess
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.jobs import finish_job, start_job
from accounts.models import CiJob, Project, User

MASK = b"[MASKED]"


def job_environment(job, token, server_url):
    project = job.project
    server_url = server_url.rstrip("/")
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_JOB_TOKEN": token,
        "CI_JOB_ID": str(job.pk),
        "CI_JOB_NAME": job.name,
        "CI_COMMIT_REF_NAME": job.ref,
        "CI_SERVER_URL": server_url,
        "CI_SERVER_HOST": urlsplit(server_url).netloc,
        "CI_API_V4_URL": f"{server_url}/api/v4",
        "CI_PROJECT_ID": str(project.pk),
        "CI_PROJECT_PATH": project.full_path,
        "CI_PROJECT_NAME": project.path,
        "CI_PROJECT_NAMESPACE": project.full_path.rsplit("/", 1)[0],
        "CI_PROJECT_NAMESPACE_ID": str(project.group_id) if project.group_id else "",
        "CI_PROJECT_ROOT_NAMESPACE": project.root_namespace_path,
    }


def pump(source, write, secret):
    """Copy lines from a pipe to `write`, masking the secret (tokens hold no newline)."""
    for line in iter(source.readline, b""):
        write(line.replace(secret, MASK).decode("utf-8", "replace"))
    source.close()


class Command(BaseCommand):
    help = "Run a command as a CI job with a live CI_JOB_TOKEN; the job is finished when it exits."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["run"])
        parser.add_argument("--project", required=True, help="project id or full path")
        parser.add_argument("--user", required=True, help="username the job runs as")
        parser.add_argument("--server-url", default=None, help="default: EXTERNAL_URL or http://127.0.0.1:8000")
        parser.add_argument("--name", default="job")
        parser.add_argument("--ref", default="main")
        parser.add_argument("command", nargs="+", help="the command to run (after --)")

    def handle(self, *args, project, user, server_url, name, ref, command, **options):
        if command and command[0] == "--":
            command = command[1:]
        if not command:
            raise CommandError("no command given")
        target = (
            Project.objects.filter(pk=int(project))
            if project.isdigit()
            else Project.objects.filter(full_path__iexact=project)
        )
        target = target.select_related("group").first()
        if target is None:
            raise CommandError(f"no project {project!r}")
        runner = User.objects.filter(username=user, is_active=True).first()
        if runner is None:
            raise CommandError(f"no active user {user!r}")
        server_url = server_url or settings.EXTERNAL_URL or "http://127.0.0.1:8000"

        job, token = start_job(target, runner, name=name, ref=ref)
        self.stderr.write(f"Running job {job.pk} of {target.full_path} as {runner.username}")
        secret = token.encode()
        status = CiJob.Status.FAILED
        returncode = 1
        try:
            process = subprocess.Popen(
                command,
                env={**os.environ, **job_environment(job, token, server_url)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            pumps = [
                threading.Thread(target=pump, args=(process.stdout, self._writer(self.stdout), secret)),
                threading.Thread(target=pump, args=(process.stderr, self._writer(self.stderr), secret)),
            ]
            for thread in pumps:
                thread.start()
            try:
                returncode = process.wait()
            except BaseException:
                process.kill()
                process.wait()
                returncode = 130
                raise
            finally:
                for thread in pumps:
                    thread.join()
            if returncode < 0:  # killed by a signal: the shell's convention
                returncode = 128 - returncode
            status = CiJob.Status.SUCCESS if returncode == 0 else CiJob.Status.FAILED
        except OSError as exc:
            returncode = 127
            raise CommandError(f"cannot run {command[0]!r}: {exc}", returncode=127) from exc
        finally:
            finish_job(job, status)
            self.stderr.write(f"Job {job.pk} finished: {status}")
        if returncode != 0:
            raise CommandError(f"command exited with status {returncode}", returncode=returncode)

    @staticmethod
    def _writer(stream):
        lock = threading.Lock()

        def write(text):
            with lock:
                stream.write(text, ending="")
                stream.flush()

        return write
