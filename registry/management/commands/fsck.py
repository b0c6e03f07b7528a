"""`manage.py fsck [--deep]`: check that the blob rows and the objects of the store agree
(registry.consistency); prints each problem and a summary, exits 1 on any problem, 2 when the
store cannot be reached."""

from django.core.management.base import BaseCommand

from registry import consistency
from registry.errors import StorageUnavailable


class Command(BaseCommand):
    help = "Check that every blob has its object (size; sha256 with --deep) and every object its blob."

    def add_arguments(self, parser):
        parser.add_argument("--deep", action="store_true", help="read every object and compare its sha256")

    def handle(self, *args, deep=False, **options):
        try:
            report = consistency.check(deep=deep)
        except StorageUnavailable:
            self.stderr.write("fsck: the blob store cannot be reached")
            raise SystemExit(2) from None
        for problem in report.problems:
            self.stdout.write(problem)
        self.stdout.write(("ok: " if report.ok else "FAILED: ") + report.summary())
        if not report.ok:
            raise SystemExit(1)
