"""Monitoring pages for staff, and the unauthenticated health endpoint."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from resilience.monitoring.health import run_checks


@require_GET
@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "resilience/overview.html", {"checks": run_checks()})


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
