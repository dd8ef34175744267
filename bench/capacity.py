"""Benchmark: the capacity model's figures (docs/scaling.md), measured here.

    storage   PostgreSQL rows and sizes (heap, TOAST, each index) of the calls
              tables, scaled to one million calls, from the database at DATABASE_URL
    web       requests/s of one web worker (one process, one request at a time,
              Django's test Client: the whole middleware stack, no HTTP server) on
              the calls dashboard and the analytics page, at cache hit and at cache
              miss (the organization's tag bumped before each request, so the miss
              path includes the lookup, the render and the store), and the Redis
              commands each request costs (counted on a private redis-server this
              script starts and stops by PID, so nobody else's commands are counted)
    plans     EXPLAIN ANALYZE of the dashboard's keyset query on a copy of calls_call
              partitioned by month (made here, dropped after): page 1, a deep page,
              and a date-range filter, to compare with the plain table's plans
    pipeline  calls/minute through transcribe → analyse → notify in one worker
              process (tasks run in-process, the provider simulator answering at
              once on loopback): the CPU and database cost per call, the ceiling of
              a worker when providers are instant

Usage (a database seeded with `manage.py seed_demo --orgs 1`; the biggest
organization is measured):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/calliq_fleetcfg_bench DJANGO_DEBUG=1 \\
    .venv/bin/python bench/capacity.py --requests 100 --pipeline-calls 30
"""

from __future__ import annotations

import argparse
import atexit
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("CALLIQ_STATIC_MANIFEST", "0")
os.environ["CALLIQ_LOG_LEVEL"] = "WARNING"

from tests.private_redis import free_port, start_redis

REDIS_PORT = free_port()
os.environ["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
os.environ.pop("BREAKER_REDIS_URL", None)
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
REDIS = start_redis(REDIS_PORT)
# Stopped at exit, after the cache service's own exit hook has flushed its counters (atexit is LIFO).
atexit.register(lambda: (REDIS.terminate(), REDIS.wait(10)))

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from calls import tasks  # noqa: E402
from calls.models import Call  # noqa: E402
from calls.tenancy.models import Membership, Organization  # noqa: E402
from resilience.cache import cache_service  # noqa: E402
from resilience.providers.simulator import SimulatorServer  # noqa: E402
from tests import factories  # noqa: E402

TABLES = (
    "calls_call",
    "calls_transcript",
    "calls_callanalysis",
    "analytics_dailyrollup",
    "analytics_topicdayrollup",
)
BROWSER = {"Accept-Encoding": "gzip, deflate, br", "Accept": "text/html"}


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def storage() -> None:
    calls = Call.objects.count()
    per_million = 1_000_000 / max(calls, 1)
    print(f"\n## Storage: {calls:,} calls in the database, scaled to 1,000,000 calls\n")
    print(f"{'table':<26}{'rows/1M calls':>15}{'heap':>12}{'TOAST':>12}{'indexes':>12}{'total':>12}")
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is None:
                continue
            cursor.execute(
                f"SELECT count(*), pg_relation_size(%s), pg_total_relation_size(%s) - pg_relation_size(%s)"
                f" - pg_indexes_size(%s), pg_indexes_size(%s) FROM {table}",
                [table] * 5,
            )
            rows, heap, toast, indexes = cursor.fetchone()
            total = heap + toast + indexes
            print(
                f"{table:<26}{rows * per_million:>15,.0f}{mib(heap * per_million):>12}{mib(toast * per_million):>12}"
                f"{mib(indexes * per_million):>12}{mib(total * per_million):>12}"
            )
        cursor.execute(
            "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
            " WHERE relname = 'calls_call' ORDER BY 2 DESC"
        )
        print("\ncalls_call indexes per 1M calls: " + ", ".join(f"{n} {mib(s * per_million)}" for n, s in cursor))


def commands_processed(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


def web(requests: int) -> None:
    top = Call.objects.values("organization").annotate(n=Count("id")).order_by("-n").first()
    org = Organization.objects.get(pk=top["organization"])
    # A manager or admin: sees every call of the organization, as the analytics page needs.
    member = (
        Membership.objects.filter(organization=org).exclude(role=Membership.Role.REP).select_related("user").first()
    )
    client = Client(headers=BROWSER)
    client.force_login(member.user)
    service = cache_service()
    counter = redis.Redis(port=REDIS_PORT)
    pages = {"calls dashboard": reverse("calls:list"), "analytics": reverse("analytics:dashboard")}
    print(f"\n## One web worker: {top['n']:,} calls in the organization, {requests} requests per case\n")
    print(f"{'page':<18}{'cache':<7}{'ms/request (median)':>21}{'requests/s':>12}{'Redis cmds/req':>16}")
    for name, url in pages.items():
        for mode in ("miss", "hit"):
            assert client.get(url).status_code == 200  # warm the process (templates, imports) and the entry
            timings = []
            before = commands_processed(counter)
            for _ in range(requests):
                if mode == "miss":
                    service.invalidate_tags(f"org:{org.pk}", on_commit=False)
                started = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200
                if mode == "hit":
                    assert response.get("X-Cache") in (None, "HIT"), response.get("X-Cache")
            # One INFO per measurement and, for misses, the INCR of the bump are ours, not the request's.
            ops = (commands_processed(counter) - before - 1) / requests - (1 if mode == "miss" else 0)
            median = statistics.median(timings)
            print(f"{name:<18}{mode:<7}{median * 1000:>21.1f}{1 / median:>12.1f}{ops:>16.1f}")


PARTITIONED = "bench_calls_call_by_month"


def plans() -> None:
    """The plain table's and a monthly-partitioned copy's plans of the same keyset queries."""
    top = Call.objects.values("organization").annotate(n=Count("id")).order_by("-n").first()
    org_id = top["organization"]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PARTITIONED}")
        cursor.execute(
            f"CREATE TABLE {PARTITIONED} (LIKE calls_call INCLUDING DEFAULTS) PARTITION BY RANGE (started_at)"
        )
        cursor.execute(
            "SELECT date_trunc('month', min(started_at)), date_trunc('month', max(started_at)) FROM calls_call"
        )
        first, last = cursor.fetchone()
        cursor.execute(
            "SELECT m, m + interval '1 month' FROM generate_series(%s::timestamptz, %s, interval '1 month') m",
            [first, last],
        )
        for start, end in cursor.fetchall():
            cursor.execute(
                f"CREATE TABLE {PARTITIONED}_{start:%Y%m} PARTITION OF {PARTITIONED} FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        cursor.execute(f"CREATE INDEX ON {PARTITIONED} (organization_id, started_at, id)")
        cursor.execute(f"INSERT INTO {PARTITIONED} SELECT * FROM calls_call")
        cursor.execute(f"ANALYZE {PARTITIONED}")
        cursor.execute(
            "SELECT started_at, id FROM calls_call WHERE organization_id = %s ORDER BY started_at DESC, id DESC"
            " OFFSET 60000 LIMIT 1",
            [org_id],
        )
        deep_at, deep_id = cursor.fetchone()
        cursor.execute("SELECT date_trunc('month', %s::timestamptz)", [deep_at])
        month = cursor.fetchone()[0]
        queries = {
            "page 1": ("", []),
            f"deep page (after row {deep_id})": ("AND (started_at, id) < (%s, %s)", [deep_at, deep_id]),
            f"date filter (the month of {month:%Y-%m})": (
                "AND started_at >= %s AND started_at < %s::timestamptz + interval '1 month'",
                [month, month],
            ),
        }
        try:
            for table in ("calls_call", PARTITIONED):
                for name, (where, params) in queries.items():
                    cursor.execute(
                        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id, started_at, title FROM "
                        f"{table} WHERE organization_id = %s {where} ORDER BY started_at DESC, id DESC LIMIT 51",
                        [org_id, *params],
                    )
                    print(f"\n## Plan: {table}, {name}\n")
                    print("\n".join("    " + row[0] for row in cursor.fetchall()))
        finally:
            cursor.execute(f"DROP TABLE {PARTITIONED}")


def pipeline(n: int) -> None:
    server = SimulatorServer("127.0.0.1", 0)
    server.start()
    providers = {
        "assemblyai": f"{server.url}/assemblyai",
        "openai": f"{server.url}/openai/v1",
        "paddle": f"{server.url}/paddle",
        "resend": f"{server.url}/resend",
    }
    from django.conf import settings

    configured = {name: {**config, "base_url": providers[name]} for name, config in settings.PROVIDERS.items()}
    org = factories.make_organization(name="Bench capacity", slug=f"bench-capacity-{os.getpid()}")
    name = f"bench-capacity-{os.getpid()}@example.com"
    user = factories.make_user(username=name, email=name)
    member = factories.make_membership(org, user=user, role=Membership.Role.MANAGER)
    try:
        with (
            tempfile.TemporaryDirectory() as media,
            override_settings(
                PROVIDERS=configured,
                PROVIDER_SIMULATOR_URL=server.url,
                PROVIDER_SIMULATOR_SECRET=server.secret,
                MEDIA_ROOT=media,
            ),
        ):
            started = time.perf_counter()
            for i in range(n):
                with transaction.atomic():
                    call = factories.make_call(
                        org, rep=member.user, status=Call.Status.UPLOADED, score=None, sentiment=None
                    )
                    call.recording.save(f"call{i}.wav", ContentFile(b"RIFF....WAVEfmt a recorded call"), save=True)
                    tasks.start_pipeline(call)
            elapsed = time.perf_counter() - started
        completed = Call.objects.for_org(org).filter(status=Call.Status.COMPLETED).count()
        print(f"\n## Pipeline: {n} calls through one worker process, providers instant\n")
        print(f"completed {completed}/{n}; {elapsed / n * 1000:.0f} ms per call; {60 * n / elapsed:,.0f} calls/minute")
    finally:
        server.stop()
        Call.objects.filter(organization=org).delete()
        org.delete()
        user.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--pipeline-calls", type=int, default=30)
    args = parser.parse_args()
    setup_test_environment()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared, loaded machine)")
    storage()
    web(args.requests)
    plans()
    pipeline(args.pipeline_calls)


if __name__ == "__main__":
    main()
