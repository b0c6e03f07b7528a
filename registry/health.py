from django.db import connection
from django.http import JsonResponse


def health(request):
    """Liveness and database reachability, for load balancers and the test harness."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def not_found(request, exception=None):
    """404 for unknown routes: JSON in GitLab's shape on the API, plain text elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"message": "404 Not Found"}, status=404)
    from django.http import HttpResponseNotFound

    return HttpResponseNotFound("Not Found")
