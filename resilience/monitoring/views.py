"""The monitoring pages (staff), /metrics (staff or monitoring token) and
GET /api/v1/monitoring/metrics (staff or monitoring token).

The pages refresh themselves with htmx (hx-trigger="every 30s" on the page
body, answered with the page's `body` partial); no inline script anywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from prometheus_client import CONTENT_TYPE_LATEST

from resilience.monitoring import collector, report
from resilience.monitoring.access import may_read_metrics


def _page(request: HttpRequest, template: str, build: Callable[[], dict[str, Any]]) -> HttpResponse:
    name = template if not getattr(request, "htmx", False) else f"{template}#body"
    return render(request, name, {"data": build()})


@require_GET
@staff_member_required
@never_cache
@vary_on_headers("HX-Request")
def routes(request: HttpRequest) -> HttpResponse:
    return _page(request, "resilience/monitoring_routes.html", report.routes)


@require_GET
@staff_member_required
@never_cache
@vary_on_headers("HX-Request")
def slow(request: HttpRequest) -> HttpResponse:
    return _page(request, "resilience/monitoring_slow.html", report.slow)


@require_GET
@staff_member_required
@never_cache
@vary_on_headers("HX-Request")
def alerts(request: HttpRequest) -> HttpResponse:
    return _page(request, "resilience/monitoring_alerts.html", report.alerts)


@require_GET
@staff_member_required
@never_cache
@vary_on_headers("HX-Request")
def business(request: HttpRequest) -> HttpResponse:
    return _page(request, "resilience/monitoring_business.html", report.business)


def _denied() -> JsonResponse:
    response = JsonResponse(
        {"error": "forbidden", "detail": "Staff sign-in or the monitoring token (Authorization: Bearer) is required."},
        status=403,
    )
    return response


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the Redis aggregates."""
    if not may_read_metrics(request):
        return _denied()
    return HttpResponse(collector.exposition(), content_type=CONTENT_TYPE_LATEST)


@require_GET
@never_cache
def metrics_json(request: HttpRequest) -> JsonResponse:
    if not may_read_metrics(request):
        return _denied()
    return JsonResponse(report.as_json())
