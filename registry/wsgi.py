import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
django_application = get_wsgi_application()

from registry.response_cache import ReuseApplication  # noqa: E402 - needs Django set up

# Remembered metadata documents are answered before Django runs (registry.response_cache).
application = ReuseApplication(django_application)
