"""What /api/v4 answers when no route matches: GitLab's JSON, never a page of the web UI.

- A path no route knows: 404 `{"error": "404 Not Found"}` (mounted last in api/urls.py, so
  nothing under /api/v4/ reaches the web routes' sign-in redirect or CSRF page).
- A known route asked with a method it does not have: 405 `{"error": "405 Not Allowed"}` with
  `Allow` (ManagementView checks the method before the caller, as Grape routes before it
  authenticates).
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

NOT_FOUND = {"error": "404 Not Found"}
NOT_ALLOWED = {"error": "405 Not Allowed"}


@csrf_exempt
def unknown_route(request, *args, **kwargs):
    return JsonResponse(NOT_FOUND, status=404)
