"""Admin-only operations on our namespace: a bounded key count and a flush.
Both SCAN, so neither ever runs on the request path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis

from resilience.cache.entries import EPOCH_TAG

if TYPE_CHECKING:
    from resilience.cache.service import CacheService


def namespace_info(service: CacheService, *, max_scan: int = 200_000) -> dict[str, Any]:
    """Key count of our namespace (bounded SCAN) and Redis memory."""
    client = service.usable_client()
    if client is None:
        return {"available": False}
    try:
        count = 0
        truncated = False
        for _ in client.scan_iter(match=f"{service.prefix}*", count=1000):
            count += 1
            if count >= max_scan:
                truncated = True
                break
        memory = client.info("memory")
        return {
            "available": True,
            "keys": count,
            "truncated": truncated,
            "used_memory_human": memory.get("used_memory_human"),
            "maxmemory_policy": memory.get("maxmemory_policy"),
            "db_keys": client.dbsize(),
        }
    except redis.RedisError as exc:
        service.failed(exc, "info")
        return {"available": False}


def flush_namespace(service: CacheService) -> int:
    """Drop everything we cached: bump the epoch (instant, every process sees
    it), then UNLINK our entry keys in batches. Never FLUSHDB: Django's own
    cache keys and everything else in the database stay."""
    service.invalidate_tags(EPOCH_TAG, on_commit=False)
    client = service.usable_client()
    if client is None:
        return 0
    removed = 0
    batch: list[bytes] = []
    try:
        for k in client.scan_iter(match=f"{service.prefix}e:*", count=1000):
            batch.append(k)
            if len(batch) >= 1000:
                removed += client.unlink(*batch)
                batch = []
        if batch:
            removed += client.unlink(*batch)
    except redis.RedisError as exc:
        service.failed(exc, "flush")
    return removed
