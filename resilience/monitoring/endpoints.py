"""The anonymous monitoring endpoints: probes for load balancers and
Kubernetes, and the two endpoints browsers post to on their own (CSP
violation reports, real-user timing beacons). None of them reads a session or
returns anything about the app's data; all answer with `Cache-Control:
no-store` semantics (never_cache)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from resilience.monitoring import csp, rum
from resilience.monitoring.errors import deliver
from resilience.monitoring.health import run_checks
from resilience.monitoring.ratelimit import allow

logger = logging.getLogger("calliq.monitoring")


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Checks no dependency on purpose."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: PostgreSQL read, Redis PING, broker reachable, each bounded
    by 1 s; 503 naming the failing checks. Details are check names, versions
    and exception class names only: nothing a stranger could use."""
    checks = run_checks()
    failing = [c.name for c in checks if not c.ok]
    body = {
        "status": "ok" if not failing else "unavailable",
        "failing": failing,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "latency_ms": c.latency_ms} for c in checks},
    }
    return JsonResponse(body, status=503 if failing else 200)


def _read_bounded(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is (or claims to be) larger than `limit`."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > limit:
        return None
    raw = request.read(limit + 1)
    return None if len(raw) > limit else raw


def _same_origin(request: HttpRequest) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    return origin is not None and origin == f"{request.scheme}://{request.get_host()}"


# CSRF-exempt: browsers send reports without cookies' CSRF token or header.
# Nothing here changes a user's data; forged reports only add counted noise,
# bounded by size and by the per-client rate limit.
@csrf_exempt
@require_POST
@never_cache
def csp_report(request: HttpRequest) -> HttpResponse:
    if request.content_type not in csp.CONTENT_TYPES:
        return JsonResponse({"error": f"Content-Type must be one of {sorted(csp.CONTENT_TYPES)}"}, status=415)
    raw = _read_bounded(request, csp.MAX_BODY)
    if raw is None:
        return JsonResponse({"error": f"a report body is at most {csp.MAX_BODY} bytes"}, status=413)
    if not allow("csp", request, settings.CALLIQ_CSP_REPORTS_PER_MINUTE):
        return JsonResponse({"error": "too many reports; try later"}, status=429)
    try:
        violations = csp.parse_reports(request.content_type, raw)
    except csp.ReportError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    for violation in violations:
        deliver(csp.violation_event(violation, request))
    return HttpResponse(status=204)


# CSRF-exempt: navigator.sendBeacon cannot set a CSRF header. Instead the
# beacon must come from our own pages (Sec-Fetch-Site: same-origin, or an
# Origin equal to our host when the browser sends no Fetch Metadata), be at
# most 4 KB, match a strict schema and stay under a per-client rate limit.
# It writes only anonymous counters.
@csrf_exempt
@require_POST
@never_cache
def rum_beacon(request: HttpRequest) -> HttpResponse:
    if not _same_origin(request):
        return JsonResponse({"error": "beacons are accepted from this site's own pages only"}, status=403)
    raw = _read_bounded(request, rum.MAX_BODY)
    if raw is None:
        return JsonResponse({"error": f"a beacon is at most {rum.MAX_BODY} bytes"}, status=413)
    if not allow("rum", request, settings.CALLIQ_RUM_BEACONS_PER_MINUTE):
        return JsonResponse({"error": "too many beacons; try later"}, status=429)
    try:
        beacon = rum.parse_beacon(raw)
    except rum.BeaconError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    try:
        rum.record(beacon)
    except Exception as exc:  # Redis away: the timing is dropped, the page never notices
        logger.warning("RUM beacon dropped: %s", type(exc).__name__)
        return JsonResponse({"error": "timings are not being stored right now"}, status=503)
    return HttpResponse(status=204)
