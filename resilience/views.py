"""The staff monitoring overview (the probes are in resilience/monitoring/endpoints.py)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
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
