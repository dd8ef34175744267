"""The analytics dashboard."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Count
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from calliq.decorators import organization_required
from calliq.http import OrgRequest
from calls.models import Call


@require_GET
@organization_required
def dashboard(request: OrgRequest) -> HttpResponse:
    since = timezone.now() - timedelta(days=30)
    totals = (
        Call.objects.for_org(request.organization)
        .filter(started_at__gte=since)
        .aggregate(calls=Count("id"), avg_score=Avg("score"), avg_sentiment=Avg("sentiment"))
    )
    return render(request, "analytics/dashboard.html", {"totals": totals, "since": since})
