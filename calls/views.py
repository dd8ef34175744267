"""Calls pages: the dashboard table and call detail."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from calliq.decorators import organization_required
from calliq.http import OrgRequest
from calls.models import Call


@require_GET
@organization_required
def call_list(request: OrgRequest) -> HttpResponse:
    calls = Call.objects.for_org(request.organization).select_related("rep").order_by("-started_at", "-id")[:50]
    return render(request, "calls/list.html", {"calls": calls})


@require_GET
@organization_required
def call_detail(request: OrgRequest, call_id: int) -> HttpResponse:
    call = get_object_or_404(
        Call.objects.for_org(request.organization).select_related("rep", "transcript", "analysis"), pk=call_id
    )
    return render(request, "calls/detail.html", {"call": call})
