"""GitLab offset pagination: `page` / `per_page` in, X-* headers and a `Link` header out."""

import math
from urllib.parse import urlencode

from rest_framework.pagination import BasePagination
from rest_framework.response import Response

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


def _positive_int(value, default):
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        return default
    number = int(value)
    return number if number >= 1 else default


class GitLabPagination(BasePagination):
    """`page` (default 1) and `per_page` (default 20, max 100). Works on querysets and lists.

    Headers: X-Total, X-Total-Pages, X-Page, X-Per-Page, X-Next-Page, X-Prev-Page (empty when
    there is none) and Link with rel next/prev/first/last, keeping the other query parameters.
    """

    default_per_page = DEFAULT_PER_PAGE
    max_per_page = MAX_PER_PAGE

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        params = request.query_params
        self.per_page = min(_positive_int(params.get("per_page"), self.default_per_page), self.max_per_page)
        self.page = _positive_int(params.get("page"), 1)
        self.total = len(queryset) if isinstance(queryset, list) else queryset.count()
        self.total_pages = max(1, math.ceil(self.total / self.per_page))
        if self.page > self.total_pages:  # past the last page (however far): an empty page
            return []
        start = (self.page - 1) * self.per_page
        return list(queryset[start : start + self.per_page])

    def _url(self, page):
        params = self.request.query_params.copy()
        params["page"] = str(page)
        params["per_page"] = str(self.per_page)
        return self.request.build_absolute_uri(self.request.path) + "?" + urlencode(sorted(params.lists()), doseq=True)

    def headers(self):
        next_page = self.page + 1 if self.page < self.total_pages else None
        prev_page = self.page - 1 if 1 < self.page <= self.total_pages + 1 else None
        links = []
        if next_page:
            links.append(f'<{self._url(next_page)}>; rel="next"')
        if prev_page:
            links.append(f'<{self._url(prev_page)}>; rel="prev"')
        links.append(f'<{self._url(1)}>; rel="first"')
        links.append(f'<{self._url(self.total_pages)}>; rel="last"')
        return {
            "X-Total": str(self.total),
            "X-Total-Pages": str(self.total_pages),
            "X-Page": str(self.page),
            "X-Per-Page": str(self.per_page),
            "X-Next-Page": str(next_page) if next_page else "",
            "X-Prev-Page": str(prev_page) if prev_page else "",
            "Link": ", ".join(links),
        }

    def get_paginated_response(self, data):
        return Response(data, headers=self.headers())
