"""Benchmark: a cache hit of @cached_view against the framework's floor.

Same view, same data, one run, in-process with Django's test Client (so the
full middleware stack runs: sessions, sign-in, CSRF, CSP, htmx, organization,
compression; no network or server in the way):

    trivial      a view returning "ok" behind the same middleware and sign-in (the floor)
    uncached     the calls page (50 rows of a few thousand calls), rendered every time
    cache_page   the same view under Django's @cache_page(60) (django-redis; a pickle-serializer
                 alias of its own, since the app's caches are msgpack and cache_page stores
                 HttpResponse objects)
    cached_view  the same view under our @cached_view(preset="per_user", tags=["org:{org}"]), hits only
    api hit      the JSON list under @cached_view(preset="short"), hits only

Each variant is warmed, then timed for --requests requests per round; rounds
interleave the variants and the best round of each counts.
Requests send the headers a browser sends (Accept-Encoding: gzip, br), so
responses over 1 KB are compressed: per request for uncached and cache_page,
from the stored forms for every cached_view hit (HTML is stored without CSRF
tokens, see resilience/cache/decorators.py).

Usage (your own database and Redis DB; seeds once, idempotent):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/calliq_cache REDIS_URL=redis://127.0.0.1:6379/3 \\
    DJANGO_DEBUG=1 .venv/bin/python bench/cache_view.py --calls 3000 --requests 1500 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
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
from resilience.cache import cache_service  # noqa: E402
from tests import factories  # noqa: E402

BROWSER = {"Accept-Encoding": "gzip, deflate, br", "Accept": "text/html"}
VARIANTS = [
    ("trivial", "/cache-test/trivial/"),
    ("uncached", "/cache-test/uncached/"),
    ("cache_page", "/cache-test/cache-page/"),
    ("cached_view (hit)", "/cache-test/calls/"),
    ("api cached_view (hit)", "/cache-test/api/calls"),
]


def seed(calls: int) -> Membership:
    org, _ = Organization.objects.get_or_create(slug="bench-cache", defaults={"name": "Bench Cache Org"})
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
                outcome=Call.Outcome.WON,
                score=i % 101,
                sentiment=0.5,
                talk_ratio=0.5,
            )
            for i in range(have, calls)
        ],
        batch_size=1000,
    )
    return membership


def warm_up(client: Client, url: str) -> tuple[str, int]:
    for _ in range(20):
        response = client.get(url, headers=BROWSER)
    assert response.status_code == 200, (url, response.status_code)
    return response.get("X-Cache", "-"), len(response.content)


def timed(client: Client, url: str, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        client.get(url, headers=BROWSER)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    setup_test_environment()  # the test Client's host name, nothing else
    call_command("migrate", verbosity=0)
    membership = seed(args.calls)
    cache_service().invalidate_tags(f"org:{membership.organization_id}", on_commit=False)

    default = settings.CACHES["default"]
    baseline = {
        **default,
        "KEY_PREFIX": f"{default.get('KEY_PREFIX', '')}-cache-page",
        "OPTIONS": {**default["OPTIONS"], "SERIALIZER": "django_redis.serializers.pickle.PickleSerializer"},
    }
    caches = {**settings.CACHES, "cache_page_baseline": baseline}
    with override_settings(ROOT_URLCONF="tests.resilience.cache_urls", DEBUG=False, CACHES=caches):
        client = Client()
        client.force_login(membership.user)
        shapes = {name: warm_up(client, url) for name, url in VARIANTS}
        # Rounds interleave the variants so a noisy neighbour hits them all alike; best round wins.
        best = dict.fromkeys(shapes, float("inf"))
        for _ in range(args.rounds):
            for name, url in VARIANTS:
                best[name] = min(best[name], timed(client, url, args.requests))
        rows = [(name, args.requests / best[name], *shapes[name]) for name, _url in VARIANTS]

    load = os.getloadavg()
    floor = rows[0][1]
    uncached = rows[1][1]
    print(f"cache_view benchmark: {args.calls} calls, {args.requests} requests x best of {args.rounds} rounds,")
    print("Django test Client in-process, signed in by session, Accept-Encoding: gzip, deflate, br")
    print(f"database {settings.DATABASES['default']['NAME']}, Redis {settings.REDIS_URL}")
    print(f"load average at the end (a shared machine: compare ratios, not absolute rates): {load[0]:.2f}\n")
    print(f"{'variant':<24}{'req/s':>10}{'ms/req':>9}{'cost vs trivial':>17}{'speed vs uncached':>19}  X-Cache  bytes")
    for name, rps, x_cache, size in rows:
        cost, speed = floor / rps, rps / uncached
        print(f"{name:<24}{rps:>10.0f}{1000 / rps:>9.2f}{cost:>16.2f}x{speed:>18.2f}x  {x_cache:<7}  {size}")
    hit = next(r for r in rows if r[0].startswith("cached_view"))
    goal = floor / hit[1]
    print(
        f"\ngoal: a hit within 1.3x of the trivial view's cost -> {goal:.2f}x ({'met' if goal <= 1.3 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
