"""Health checks of the services CallIQ depends on, for the readiness probe
(/readyz) and the staff monitoring page. Each check is bounded in time
(CHECK_TIMEOUT, enforced by waiting on a worker thread, so a stalled socket
cannot hold the probe) and never raises: it reports what it saw.

The database check only reads (SELECT 1): a probe that writes, as some
health-check packages do, turns every probe into WAL traffic and fails on a
read-only replica. Liveness (/healthz) uses none of this: a liveness probe
that checks dependencies restarts every pod during a database outage."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection
from kombu import Connection

CHECK_TIMEOUT = 1.0  # seconds, per check
# Checks run side by side, so a probe takes at most about CHECK_TIMEOUT; a
# check that overran keeps its thread until its own socket timeout ends it.
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health-check")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    latency_ms: float


def check_database() -> str:
    # Runs on a pool thread: its own connection, closed after the probe, so
    # probes never pile up idle connections (or keep a test database open).
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return connection.vendor
    finally:
        connection.close()


def check_redis() -> str:
    if not settings.REDIS_AVAILABLE:
        return "not configured (REDIS_URL is empty): running degraded"
    # The cache's own client (django-redis), so the probe sees what the app
    # sees; its socket timeouts (CACHES OPTIONS) are well under CHECK_TIMEOUT.
    client = get_redis_connection("default")
    client.ping()
    return f"redis {client.info('server').get('redis_version', '?')}"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or url.startswith("memory://"):
        return "tasks run in-process (no broker)"
    options = {"socket_connect_timeout": CHECK_TIMEOUT, "socket_timeout": CHECK_TIMEOUT, "max_retries": 0}
    with Connection(url, connect_timeout=CHECK_TIMEOUT, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT)
        conn.default_channel  # noqa: B018  (opening a channel talks to the broker: Redis PINGs here)
        conn.heartbeat_check()
        return f"{getattr(conn.transport, 'driver_type', 'broker')} reachable"


CHECKS: dict[str, Callable[[], str]] = {"database": check_database, "redis": check_redis, "broker": check_broker}


def _timed(probe: Callable[[], str]) -> tuple[bool, str, float]:
    start = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as exc:
        # The exception's class only: messages can carry hosts and user names.
        detail, ok = f"failed: {type(exc).__name__}", False
    return ok, detail, round((time.perf_counter() - start) * 1000, 2)


def run_checks(names: tuple[str, ...] = ("database", "redis", "broker")) -> list[Check]:
    futures = {name: _pool.submit(_timed, CHECKS[name]) for name in names}
    deadline = time.monotonic() + CHECK_TIMEOUT
    checks = []
    for name, future in futures.items():
        try:
            ok, detail, latency = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            ok, detail, latency = False, f"timed out after {CHECK_TIMEOUT:g} s", CHECK_TIMEOUT * 1000
        checks.append(Check(name, ok, detail, latency))
    return checks
