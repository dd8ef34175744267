"""Cache statistics: counted in a process buffer, flushed to Redis in one
pipeline at most once a second, read back for the admin and monitoring pages.

Redis layout under "<prefix>cache:": s:ns:<namespace> and s:view:<name> are
hashes of counters (hits, misses, stale, errors, bypass); s:views is the set
of view names.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import redis

from resilience import tracing

if TYPE_CHECKING:
    from resilience.cache.service import CacheService

STATS_FLUSH_INTERVAL = 1.0
COUNTERS = ("hits", "misses", "stale", "errors", "bypass")

_lock = threading.Lock()
_buffer: Counter[tuple[str, str]] = Counter()
_flushed_at = 0.0


def record_stat(scope: str, counter: str, *, view: str | None = None) -> None:
    """Count an event; it reaches Redis with the next flush (at most a second later)."""
    tracing.cache_outcome(counter)  # monitoring: cache hits per request
    with _lock:
        _buffer[(f"ns:{scope}", counter)] += 1
        if view:
            _buffer[(f"view:{view}", counter)] += 1


def flush_stats(service: CacheService, *, force: bool = False) -> None:
    """Write buffered counters in one pipeline (at most once a second unless forced)."""
    global _flushed_at
    now = time.monotonic()
    if not force and now - _flushed_at < STATS_FLUSH_INTERVAL:
        return
    with _lock:
        batch = dict(_buffer)
        _buffer.clear()
        _flushed_at = now
    if not batch:
        return
    client = service.usable_client()
    if client is None:
        with _lock:
            _buffer.update(batch)
        return
    try:
        pipe = client.pipeline(transaction=False)
        for (scope, counter), amount in batch.items():
            pipe.hincrby(f"{service.prefix}s:{scope}", counter, amount)
            if scope.startswith("view:"):
                pipe.sadd(f"{service.prefix}s:views", scope[5:])
        pipe.execute()
    except redis.RedisError as exc:
        with _lock:
            _buffer.update(batch)
        service.failed(exc, "statistics")


def read_stats(service: CacheService) -> dict[str, dict[str, dict[str, float]]]:
    """{"namespaces": {ns: counters}, "views": {name: counters}}; counters are
    hits, misses, stale, errors, bypass and hit_rate (hits + stale / lookups)."""
    flush_stats(service, force=True)
    result: dict[str, dict[str, dict[str, float]]] = {"namespaces": {}, "views": {}}
    client = service.usable_client()
    if client is None:
        return result
    try:
        names = sorted(n.decode() for n in client.smembers(f"{service.prefix}s:views"))
        ns_keys = sorted(k.decode() for k in client.scan_iter(match=f"{service.prefix}s:ns:*", count=100))
        pipe = client.pipeline(transaction=False)
        for k in ns_keys:
            pipe.hgetall(k)
        for n in names:
            pipe.hgetall(f"{service.prefix}s:view:{n}")
        rows = pipe.execute()
    except redis.RedisError as exc:
        service.failed(exc, "statistics read")
        return result
    for k, row in zip(ns_keys, rows[: len(ns_keys)], strict=True):
        result["namespaces"][k.rsplit(":", 1)[-1]] = counters(row)
    for n, row in zip(names, rows[len(ns_keys) :], strict=True):
        result["views"][n] = counters(row)
    return result


def counters(row: dict[bytes, bytes]) -> dict[str, float]:
    counts: dict[str, float] = {k.decode(): int(v) for k, v in row.items()}
    for name in COUNTERS:
        counts.setdefault(name, 0)
    lookups = counts["hits"] + counts["misses"] + counts["stale"]
    counts["hit_rate"] = round((counts["hits"] + counts["stale"]) / lookups, 4) if lookups else 0.0
    return counts


def reset_stats() -> None:
    """Forget buffered counters (tests only)."""
    global _flushed_at
    with _lock:
        _buffer.clear()
        _flushed_at = 0.0
