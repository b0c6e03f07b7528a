"""Celery application: Redis broker from PACKHOUSE_REDIS_URL, eager in-process tasks without it."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "packhouse.settings")

app = Celery("packhouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
