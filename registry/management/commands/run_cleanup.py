"""`manage.py run_cleanup`: the cleanup beat tick, in this process (cron-less setups).

Applies every due cleanup policy (or one project's with --project, due or not), then
purges what is pending destruction and sweeps orphan objects past the grace period.
"""

from django.core.management.base import BaseCommand, CommandError

from registry import tasks
from registry.models import CleanupPolicy


class Command(BaseCommand):
    help = "Apply due package cleanup policies and purge what is pending destruction."

    def add_arguments(self, parser):
        parser.add_argument("--project", type=int, help="apply this project's policy now, due or not")

    def handle(self, *args, project=None, **options):
        if project is not None:
            if not CleanupPolicy.objects.filter(project_id=project).exists():
                raise CommandError(f"project {project} has no cleanup policy")
            result = tasks.apply_cleanup_policy(project)
            self.stdout.write(f"project {project}: {result['versions']} versions, {result['files']} files removed")
        else:
            started = tasks.run_due_cleanup_policies(inline=True)
            self.stdout.write(f"{started} due cleanup policies applied")
        purged = tasks.purge_pending_destruction()
        orphans = tasks.collect_orphan_objects()
        self.stdout.write(
            f"purged {purged['versions']} versions, {purged['files']} files, {purged['blobs']} blobs; "
            f"{orphans} orphan objects"
        )
