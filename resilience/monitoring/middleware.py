"""Per-request profiling: wall time, database time and queries, cache time and
hits, provider time, thread CPU; a request id (X-Request-ID, also in the log
line); Server-Timing for staff and for a sampled share of requests.

It sits first in MIDDLEWARE so its wall time covers the whole stack. The
route label is the URL pattern (`calls/<int:pk>/`), never the raw path; an
unmatched URL counts as `__unmatched__`. A slow request's sample carries only
the route, method, status, timings, marks and the *names* of the query-string
parameters (filter names), never their values."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

from resilience.monitoring import buffer
from resilience.tracing import Trace, db_execute, tracing

logger = logging.getLogger("calliq.request")

# A request id from a proxy is kept only if it looks like one as a whole (fullmatch:
# `$` would let a trailing newline through, and it lands in logs and headers).
INCOMING_ID = re.compile(r"[A-Za-z0-9._\-]{8,64}")
PARAM_NAME = re.compile(r"[A-Za-z0-9_\-\[\]]{1,40}")
MAX_TIMING_ENTRIES = 10
MAX_TIMING_BYTES = 1024


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "__unmatched__"
    return match.route or match.view_name or "__unnamed__"


def server_timing(entries: list[tuple[str, float]]) -> str:
    """`name;dur=ms` entries, at most MAX_TIMING_ENTRIES and MAX_TIMING_BYTES."""
    parts: list[str] = []
    size = 0
    for name, ms in entries[:MAX_TIMING_ENTRIES]:
        token = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)[:40]
        part = f"{token};dur={ms:.1f}"
        if size + len(part) + 2 > MAX_TIMING_BYTES:
            break
        parts.append(part)
        size += len(part) + 2
    return ", ".join(parts)


class ProfilerMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.sample_rate = float(getattr(settings, "CALLIQ_SERVER_TIMING_SAMPLE_RATE", 0.0))
        self.enabled = bool(getattr(settings, "CALLIQ_PROFILER_ENABLED", True))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self.enabled:
            return self.get_response(request)
        incoming = request.headers.get("X-Request-ID", "")
        # A correlation id, not a secret: no need for the OS's randomness on every request.
        request_id = incoming if incoming and INCOMING_ID.fullmatch(incoming) else f"{random.getrandbits(64):016x}"
        request.request_id = request_id  # type: ignore[attr-defined]
        trace = Trace(request_id=request_id)
        wall0 = time.perf_counter()
        cpu0 = time.thread_time()
        with tracing(trace), connections["default"].execute_wrapper(db_execute):
            response = self.get_response(request)
        seconds = time.perf_counter() - wall0
        cpu = trace.cpu_seconds = time.thread_time() - cpu0
        route = route_of(request)
        ms = seconds * 1000
        method = request.method or "GET"

        def sample() -> dict:  # built only for a slow request
            return {
                "request_id": request_id,
                "at": time.time(),
                "method": method,
                "status": response.status_code,
                "queries": trace.queries,
                "db_ms": round(trace.db_seconds * 1000, 2),
                "cache_ms": round(trace.cache_seconds * 1000, 2),
                "provider_ms": round(trace.provider_seconds * 1000, 2),
                "cpu_ms": round(cpu * 1000, 2),
                "rss_mb": round(buffer.rss_bytes() / 2**20, 1),
                "marks": [[name, round(s * 1000, 2)] for name, s in trace.operations[:20]],
                "params": sorted({k for k in request.GET if PARAM_NAME.fullmatch(k)})[:10],
            }

        slow = buffer.add_request(route, method, response.status_code, seconds, trace, sample)
        response["X-Request-ID"] = request_id
        log = logger.info if slow else logger.debug
        log(
            "request_id=%s route=%s method=%s status=%s ms=%.1f db_ms=%.1f queries=%d%s",
            request_id,
            route,
            request.method,
            response.status_code,
            ms,
            trace.db_seconds * 1000,
            trace.queries,
            " slow" if slow else "",
        )
        if self._timing_wanted(request):
            entries = [
                ("total", ms),
                ("db", trace.db_seconds * 1000),
                ("cache", trace.cache_seconds * 1000),
                ("provider", trace.provider_seconds * 1000),
                ("cpu", cpu * 1000),
                # Counts, not times: how many cache reads this request made and how many hit.
                ("cache-reads", trace.cache_reads),
                ("cache-hits", trace.cache_hits),
                *((name, s * 1000) for name, s in trace.operations),
            ]
            response["Server-Timing"] = server_timing(entries)
        return response

    def _timing_wanted(self, request: HttpRequest) -> bool:
        if self.sample_rate and random.random() < self.sample_rate:
            return True
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and user.is_staff)
