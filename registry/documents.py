"""Client metadata documents (packument, simple index, maven-metadata.xml, NuGet registration):
cached under the generations of the packages they are built from, answered with ETag / 304.

Every write bumps `Package.generation`, so a changed package changes the key; nothing has to
be invalidated by hand. The cache is an accelerator only: when it is down, documents are built.
"""

import hashlib
import json
import logging

from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotModified

logger = logging.getLogger(__name__)
TIMEOUT = 24 * 3600


def _cache_call(method, *args):
    try:
        return getattr(cache, method)(*args)
    except Exception as exc:  # Redis down: serve uncached
        logger.warning("cache %s failed: %s", method, exc.__class__.__name__)
        return None


def cached_document(request, packages, render, content_type, variant=""):
    """Respond with `render()` (str or bytes), cached per (URL base, path, variant, packages).

    `packages` is a queryset of the registry.models.Package rows the document is built from
    (already limited to what the caller may pull); one query reads their generations.
    """
    signature = list(packages.order_by("pk").values_list("pk", "generation"))
    material = json.dumps([request.build_absolute_uri("/"), request.path, variant, signature])
    key = "doc:" + hashlib.sha256(material.encode()).hexdigest()
    etag = f'"{key[4:36]}"'
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH", "")
    if etag in [tag.strip() for tag in if_none_match.split(",")]:
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return response
    body = _cache_call("get", key)
    if body is None:
        body = render()
        if isinstance(body, str):
            body = body.encode()
        _cache_call("set", key, body, TIMEOUT)
    response = HttpResponse(body, content_type=content_type)
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response
