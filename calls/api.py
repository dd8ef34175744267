"""Calls JSON API v1: session or Bearer token, errors in one shape."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from calliq.decorators import api_organization_required
from calliq.http import OrgRequest
from calliq.middleware import api_error
from calls.models import Call


def call_json(call: Call) -> dict:
    return {
        "id": call.pk,
        "title": call.title,
        "customer": {"name": call.customer_name, "company": call.customer_company},
        "rep": call.rep.get_full_name() if call.rep else None,
        "direction": call.direction,
        "started_at": call.started_at.isoformat(),
        "duration_seconds": call.duration_seconds,
        "status": call.status,
        "outcome": call.outcome or None,
        "score": call.score,
        "sentiment": call.sentiment,
        "talk_ratio": call.talk_ratio,
    }


@require_GET
@api_organization_required
def call_detail(request: OrgRequest, call_id: int) -> JsonResponse:
    call = Call.objects.for_org(request.organization).select_related("rep").filter(pk=call_id).first()
    if call is None:
        return api_error(404, "not_found", f"No call {call_id} in this organization.")
    return JsonResponse(call_json(call))
