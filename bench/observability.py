"""Benchmark: what the always-on profiler and metrics cost, and what worker
restarts do to a /metrics scrape.

Part 1, in one process with Django's test Client (full middleware stack,
signed in by session), the same pages with ProfilerMiddleware on and off:

    cached hit   the calls table under @cached_view, hits only (tests.resilience.cache_urls)
    uncached     the same calls table rendered on every request (50 rows, a few queries)

Each request is timed on its own and requests alternate on/off one by one
(a noisy neighbour slows both alike); p50 over all rounds. The added cost is p50(on) −
p50(off); the goal is ≤ max(2 % of p50(off), 0.3 ms). The flusher thread runs
as in production (every CALLIQ_METRICS_FLUSH_SECONDS).

Part 2: the time to render /metrics (the collector, in-process) when the
same 20,000 requests were served by 1 worker vs by 100 successive workers
(99 of them dead, as after 100 --max-requests recyclings). With
prometheus-client's multiprocess mode the second case reads 100 files; here
both read the same Redis keys.

Usage (your own database and Redis DB; seeds once, idempotent):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/calliq_obsmetrics REDIS_URL=redis://127.0.0.1:6379/8 \\
    DJANGO_DEBUG=1 .venv/bin/python bench/observability.py --requests 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django

django.setup()

from datetime import timedelta  # noqa: E402

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls.models import Call  # noqa: E402
from calls.tenancy.models import Membership, Organization  # noqa: E402
from resilience.monitoring import collector, sketch, store  # noqa: E402
from tests import factories  # noqa: E402

PROFILER = "resilience.monitoring.middleware.ProfilerMiddleware"
BROWSER = {"Accept-Encoding": "gzip, deflate, br", "Accept": "text/html"}
ROUNDS_ALONE = 10
PAGES = [("cached hit", "/cache-test/calls/"), ("uncached", "/cache-test/uncached/")]


def seed(calls: int) -> Membership:
    org, _ = Organization.objects.get_or_create(slug="bench-observability", defaults={"name": "Bench Observability"})
    membership = Membership.objects.filter(organization=org).select_related("user").first()
    if membership is None:
        membership = factories.make_membership(org, role=Membership.Role.MANAGER)
    have = Call.objects.for_org(org).count()
    now = timezone.now()
    Call.objects.bulk_create(
        [
            Call(
                organization=org,
                rep=membership.user,
                title=f"Discovery call {i}",
                customer_name=f"Customer {i}",
                customer_company=f"Company {i % 300}",
                started_at=now - timedelta(minutes=i),
                duration_seconds=300 + i % 1800,
                status=Call.Status.COMPLETED,
            )
            for i in range(have, calls)
        ],
        batch_size=1000,
    )
    return membership


def client_for(membership: Membership, *, profiler: bool) -> Client:
    middleware = list(settings.MIDDLEWARE) if profiler else [m for m in settings.MIDDLEWARE if m != PROFILER]
    client = Client()
    with override_settings(MIDDLEWARE=middleware):
        client.force_login(membership.user)
        for _, url in PAGES:  # the handler builds its middleware chain on its first request
            for _ in range(20):
                response = client.get(url, headers=BROWSER)
            assert response.status_code == 200, (url, response.status_code)
    assert ("X-Request-ID" in response) == profiler
    return client


def middleware_cost(membership: Membership, requests: int, rounds: int) -> list[str]:
    """Requests alternate between the two clients one by one, so a noisy
    neighbour slows both alike; p50 over every round."""
    with override_settings(ROOT_URLCONF="tests.resilience.cache_urls", DEBUG=False):
        clients = {True: client_for(membership, profiler=True), False: client_for(membership, profiler=False)}
        times: dict[tuple[str, bool], list[float]] = {}
        for _ in range(rounds):
            for name, url in PAGES:
                for i in range(2 * requests):
                    on = bool(i % 2) ^ bool(_ % 2)
                    start = time.perf_counter()
                    clients[on].get(url, headers=BROWSER)
                    times.setdefault((name, on), []).append(time.perf_counter() - start)
    lines = [f"{'page':<12}{'p50 off ms':>12}{'p50 on ms':>11}{'added ms':>10}{'ratio':>8}{'goal ms':>9}  verdict"]
    for name, _ in PAGES:
        off = statistics.median(times[(name, False)]) * 1000
        on = statistics.median(times[(name, True)]) * 1000
        goal = max(0.02 * off, 0.3)
        added = on - off
        verdict = "met" if added <= goal else "NOT met"
        lines.append(f"{name:<12}{off:>12.3f}{on:>11.3f}{added:>10.3f}{on / off:>7.3f}x{goal:>9.3f}  {verdict}")
    return lines


def middleware_alone(calls: int) -> str:
    """The middleware's own work per request (request id, trace, execute_wrapper,
    clocks, buffer), around a view that does nothing: less noisy than whole requests."""
    from django.db import connection
    from django.http import HttpResponse
    from django.test import RequestFactory

    from resilience.monitoring.middleware import ProfilerMiddleware

    request = RequestFactory().get("/cache-test/calls/", {"sort": "score"})
    response = HttpResponse("ok")

    def view(_request: object) -> HttpResponse:
        return response

    def querying_view(_request: object) -> HttpResponse:
        with connection.cursor() as cursor:
            for _ in range(4):  # the uncached page's query count
                cursor.execute("SELECT 1")
        return response

    lines = []
    for title, bare, n in (
        ("a view doing nothing", view, calls),
        ("a view running 4 queries", querying_view, calls // 10),
    ):
        handlers = {"bare": bare, "profiled": ProfilerMiddleware(bare)}
        best = dict.fromkeys(handlers, float("inf"))
        for round_ in range(ROUNDS_ALONE):  # interleaved, so both meet the same neighbours
            for label in sorted(handlers, reverse=bool(round_ % 2)):
                start = time.perf_counter()
                for _ in range(n):
                    handlers[label](request)
                best[label] = min(best[label], (time.perf_counter() - start) / n * 1e6)
        added = best["profiled"] - best["bare"]
        bare_us, profiled_us = best["bare"], best["profiled"]
        where = f"around {title} (best of {ROUNDS_ALONE} x {n})"
        lines.append(f"middleware alone {where}: {bare_us:.1f} -> {profiled_us:.1f} µs, +{added:.1f}")
    return "\n".join(lines)


def simulate_workers(workers: int, total_requests: int) -> None:
    """`total_requests` over 20 routes, flushed by `workers` successive workers
    (all but the last dead for two minutes, as after recycling)."""
    conn = store.client()
    per_worker = total_requests // workers
    minute = int(time.time() // 60)
    for w in range(workers):
        requests, latency, totals = Counter(), Counter(), Counter()
        for i in range(per_worker):
            route = f"route/{i % 20}/"
            ms = 1 + (i * 7919 % 500)
            requests[(minute, route, "GET", "2xx")] += 1
            latency[(minute, "route", route, sketch.bucket_of(ms))] += 1
            totals[("lat_us", route)] += ms * 1000
        pipe = conn.pipeline(transaction=True)
        store.write(pipe, requests, latency, totals, Counter(), [], cap=store.NameCap(store.known_names(conn), 200))
        worker = f"bench-host:{10_000 + w}"
        store.write_worker(pipe, worker, 80_000_000)
        pipe.execute()
        if w < workers - 1:
            conn.zadd(f"{store.prefix()}:workers", {worker: time.time() - 120})


def scrape_cost(scrapes: int) -> list[str]:
    """Both histories are written first, then scrapes alternate between them."""
    histories = (("1 worker (no restarts)", 1), ("100 workers (99 restarts)", 100))
    prefixes = {label: f"bench-{uuid.uuid4().hex[:8]}:metrics" for label, _ in histories}
    times: dict[str, list[float]] = {label: [] for label, _ in histories}
    sizes: dict[str, int] = {}
    for label, workers in histories:
        with override_settings(CALLIQ_METRICS_PREFIX=prefixes[label]):
            simulate_workers(workers, 20_000)
            collector.exposition()  # the first scrape prunes the dead workers' entries
    for _ in range(scrapes):
        for label, _workers in histories:
            with override_settings(CALLIQ_METRICS_PREFIX=prefixes[label]):
                start = time.perf_counter()
                body = collector.exposition()
                times[label].append(time.perf_counter() - start)
                sizes[label] = len(body)
    conn = store.client()
    for prefix in prefixes.values():
        for key in conn.scan_iter(f"{prefix}:*"):
            conn.delete(key)
    rows = [(label, statistics.median(times[label]) * 1000, sizes[label]) for label, _ in histories]
    base = rows[0][1]
    lines = [f"{'history':<28}{'scrape p50 ms':>14}{'vs none':>9}{'bytes':>8}"]
    lines += [f"{label:<28}{ms:>14.2f}{ms / base:>8.2f}x{size:>8}" for label, ms, size in rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()

    setup_test_environment()
    call_command("migrate", verbosity=0)
    membership = seed(args.calls)
    part1 = middleware_cost(membership, args.requests, args.rounds)
    alone = middleware_alone(20_000)
    part2 = scrape_cost(args.scrapes)
    load = os.getloadavg()
    print(f"observability benchmark: {args.requests} requests per variant x {args.rounds} rounds, alternating on/off,")
    print("Django test Client in-process, signed in by session; ProfilerMiddleware on vs off, same run")
    print(f"database {settings.DATABASES['default']['NAME']}, Redis {settings.REDIS_URL}")
    print(f"load average at the end (a shared machine: compare ratios, not absolute times): {load[0]:.2f}\n")
    print("\n".join(part1))
    print(alone)
    print("\n/metrics render time after the same 20,000 requests, median of", args.scrapes, "alternating scrapes:")
    print("\n".join(part2))


if __name__ == "__main__":
    main()
