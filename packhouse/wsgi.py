import gc
import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "packhouse.settings")
django_application = get_wsgi_application()

from django.urls import get_resolver  # noqa: E402 - needs Django set up

from registry.observe import ObserveApplication  # noqa: E402
from registry.response_cache import ReuseApplication  # noqa: E402

# Import every view and compile every route now, while the worker boots, instead of during the
# first request each worker serves (half a second on a small machine).
get_resolver().reverse_dict  # noqa: B018 - evaluated for its side effect

# No formatter of packhouse.settings.LOGGING prints where a record was logged from, nor its thread,
# process id or process name: the web process's records skip looking them up (the logging HOWTO's
# "Optimization" section names these switches).
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False
logging.logProcesses = False

# Remembered metadata documents are answered before Django runs (registry.response_cache);
# every answer, replayed or not, gets a request id, is counted for /-/metrics and, with
# PACKHOUSE_LOG_FORMAT=json, logged as one JSON line (registry.observe).
application = ObserveApplication(ReuseApplication(django_application))

# Everything the worker loaded while it booted (Django, the apps, the routes) lives as long as the
# worker: moved out of the collector's generations, full collections no longer walk it (4-8% of the
# worker CPU of a Django-built answer, measured in BENCHMARKS.md).
gc.freeze()
