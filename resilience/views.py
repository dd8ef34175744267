"""Monitoring pages for staff, and the unauthenticated health endpoint."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from resilience.breaker.core import breaker
from resilience.cache import cache_service
from resilience.models import BreakerPolicy
from resilience.monitoring.health import run_checks


@require_GET
@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    """Health, every breaker's live state and the cache's hit rates on one page;
    the admin pages behind the links change them."""
    services = BreakerPolicy.objects.order_by("service").values_list("service", flat=True)
    context = {
        "checks": run_checks(),
        "breakers": [breaker(service).snapshot() for service in services],
        "cache_stats": cache_service().stats(),
    }
    return render(request, "resilience/overview.html", context)


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers: 200 while the database answers. Redis being down is
    reported but is not fatal, because CallIQ degrades without it."""
    checks = run_checks()
    database_ok = next(c.ok for c in checks if c.name == "database")
    body = {"status": "ok" if all(c.ok for c in checks) else ("degraded" if database_ok else "down")}
    body["checks"] = {c.name: {"ok": c.ok, "latency_ms": c.latency_ms} for c in checks}
    return JsonResponse(body, status=200 if database_ok else 503)
