"""Search what was said: the page (/calls/search/) and the JSON API
(GET /api/v1/calls/search). Both take the same query string: `q` (websearch
syntax, at most 200 characters), the dashboard's filters (status, outcome,
rep, started_from, started_to, score_min, score_max, sentiment) and `cursor`.

Both are scoped to the request's organization (calls.search scopes every
query at the queryset). Bad input is a 400 with a message, never a 500.
Not cached: results are read straight from the index.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from calls.api import call_json
from calls.forms import CallListForm
from calls.search import (
    FILTER_PARAMS,
    MAX_QUERY_LENGTH,
    InvalidCursor,
    SearchPage,
    decode_cursor,
    parse_search,
    search_calls,
)
from calls.tenancy.decorators import api_organization_required, organization_required
from calls.tenancy.http import OrgRequest, api_error
from calls.transcript_index import SearchError
from calls.views import rep_choices


@require_safe
@organization_required
def search_page(request: OrgRequest) -> HttpResponse:
    search, errors = parse_search(request.GET)
    form = CallListForm(request.GET, reps=rep_choices(request.organization))
    form.is_valid()
    context: dict[str, Any] = {
        "q": request.GET.get("q", ""),
        "max_length": MAX_QUERY_LENGTH,
        "form": form,
        "filter_fields": [form[name] for name in FILTER_PARAMS if name != "status"],
        "search_url": reverse("calls:search"),
        "notice": "",
        "page": None,
    }
    if not request.GET:  # the empty search box, not an error
        return render(request, "calls/search.html", context)
    if errors:
        return render(request, "calls/search.html", context | {"errors": errors}, status=400)
    if search.cursor:
        try:
            decode_cursor(search.cursor, search)
        except InvalidCursor as exc:
            # A stale or altered "more results" link: start again from the top, and say so.
            context["notice"] = exc.message
            search = replace(search, cursor="")
    try:
        page = search_calls(request.organization, search)
    except SearchError as exc:
        return render(request, "calls/search.html", context | {"errors": {exc.field: [exc.message]}}, status=400)
    return render(request, "calls/search.html", context | {"page": page, "links": links(request, page)})


def links(request: OrgRequest, page: SearchPage) -> dict[str, str | None]:
    path = request.path
    return {
        "first": page.request.url(path) if page.request.cursor else None,
        "next": page.request.url(path, page.next_cursor) if page.next_cursor else None,
    }


@require_safe
@api_organization_required
def search_api(request: OrgRequest) -> JsonResponse:
    search, errors = parse_search(request.GET)
    if errors:
        return api_error(400, "invalid_search", "Some query parameters are not valid.", fields=errors)
    try:
        page = search_calls(request.organization, search)
    except SearchError as exc:
        return api_error(400, "invalid_search", exc.message, fields={exc.field: [exc.message]})
    next_url = page.request.url(request.path, page.next_cursor) if page.next_cursor else None
    return JsonResponse(
        {
            "query": search.q,
            "results": [
                call_json(hit.call)
                | {
                    "rank": hit.rank,
                    "matching_turns": hit.matching_turns,
                    "turns": [
                        {
                            "speaker": turn.speaker,
                            "start_ms": turn.start_ms,
                            "end_ms": turn.end_ms,
                            "text": turn.text,
                            "html": str(turn.html),
                            "exact": turn.exact,
                            "url": turn.url,
                        }
                        for turn in hit.turns
                    ],
                }
                for hit in page.hits
            ],
            "next": request.build_absolute_uri(next_url) if next_url else None,
        }
    )
