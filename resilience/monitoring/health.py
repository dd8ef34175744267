"""Health checks of the services CallIQ depends on. Each check is bounded in
time and never raises: it reports what it saw."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    latency_ms: float


def timed(name: str, probe: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail = probe()
        ok = True
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return Check(name, ok, detail, round((time.perf_counter() - start) * 1000, 2))


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_redis() -> str:
    if not settings.REDIS_AVAILABLE:
        raise RuntimeError("not configured (REDIS_URL is empty): running degraded")
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        info = client.info("server")
    finally:
        client.close()
    return f"redis {info.get('redis_version', '?')}"


def run_checks() -> list[Check]:
    return [timed("database", check_database), timed("redis", check_redis)]
