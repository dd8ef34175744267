"""Calls JSON API v1: session or Bearer token, errors in one shape.

GET /api/v1/calls takes the dashboard's filters and sorts (same parameter
names) and pages with the same signed keyset cursors: follow `next`.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from calls.filters import LISTING_PARAMS, Listing
from calls.forms import parse_listing
from calls.keyset import InvalidCursor, calls_page
from calls.models import Call
from calls.selection import table_summary
from calls.templatetags.calls_extras import rep_name
from calls.tenancy.decorators import api_organization_required
from calls.tenancy.http import OrgRequest, api_error
from resilience.cache import cached_view


def call_json(call: Call) -> dict[str, Any]:
    name = rep_name(call)
    return {
        "id": call.pk,
        "url": call.get_absolute_url(),
        "title": call.title,
        "customer": {"name": call.customer_name, "company": call.customer_company},
        "rep": None if call.rep_id is None else {"id": call.rep_id, "name": name},
        "direction": call.direction,
        "started_at": timezone.localtime(call.started_at).isoformat(),
        "duration_seconds": call.duration_seconds,
        "status": call.status,
        "outcome": call.outcome or None,
        "score": call.score,
        "sentiment": call.sentiment,
        "talk_ratio": call.talk_ratio,
    }


def page_url(request: OrgRequest, listing: Listing, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    # The API has no display modes; keep its links free of them.
    return request.build_absolute_uri(
        Listing(listing.filters, listing.sort, listing.size).url(request.path, cursor=cursor)
    )


@require_safe
@api_organization_required
@cached_view(preset="short", tags=["org:{org}"], params=LISTING_PARAMS)
def call_list(request: OrgRequest) -> JsonResponse:
    listing = parse_listing(request.GET)
    if listing.errors:
        return api_error(400, "invalid_filters", "Some query parameters are not valid.", fields=listing.errors)
    matching = Call.objects.for_org(request.organization).filtered(listing.filters)
    try:
        page = calls_page(matching.for_table(), listing.sort, listing.size, listing.cursor, strict=True)
    except InvalidCursor as exc:
        return api_error(400, "invalid_cursor", str(exc), fields={"cursor": [str(exc)]})
    _, total = table_summary(request.organization, request.user, matching)
    return JsonResponse(
        {
            "results": [call_json(call) for call in page.rows],
            "next": page_url(request, listing, page.next_cursor),
            "previous": page_url(request, listing, page.prev_cursor),
            "sort": listing.sort.param,
            "size": listing.size,
            "total": {"value": total.value, "exact": total.exact},
        }
    )


@require_safe
@api_organization_required
@cached_view(preset="short", tags=["org:{org}", "call:{call_id}"])
def call_detail(request: OrgRequest, call_id: int) -> JsonResponse:
    call = Call.objects.for_org(request.organization).select_related("rep", "analysis").filter(pk=call_id).first()
    if call is None:
        return api_error(404, "not_found", f"No call {call_id} in this organization.")
    data = call_json(call)
    analysis = getattr(call, "analysis", None)
    data["analysis"] = (
        None
        if analysis is None
        else {
            "summary": analysis.summary,
            "topics": analysis.topics,
            "action_items": analysis.action_items,
            "score": analysis.score,
            "sentiment": analysis.sentiment,
            "talk_ratio": analysis.talk_ratio,
            "question_count": analysis.question_count,
            "longest_monologue_seconds": analysis.longest_monologue_seconds,
        }
    )
    return JsonResponse(data)
