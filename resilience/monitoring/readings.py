"""The values alert rules compare: read from the Redis aggregates, the breakers,
the broker and the cache statistics. Each returns None for "no data"."""

from __future__ import annotations

from collections.abc import Callable

from resilience.models import AlertRule, BreakerPolicy
from resilience.monitoring import sketch, store

Metric = AlertRule.Metric


def _overall(rule: AlertRule) -> tuple[int, int, dict[int, int]]:
    conn = store.client()
    if conn is None:
        return 0, 0, {}
    windows = store.window(conn, minutes=rule.window_minutes).values()
    requests = sum(w.requests for w in windows)
    errors = sum(w.errors for w in windows)
    return requests, errors, sketch.merge(w.sketch for w in windows)


def error_rate(rule: AlertRule) -> float | None:
    requests, errors, _ = _overall(rule)
    return errors / requests if requests and requests >= rule.min_samples else None


def latency_p95(rule: AlertRule) -> float | None:
    requests, _, merged = _overall(rule)
    if not requests or requests < rule.min_samples:
        return None
    return sketch.quantiles(merged, (0.95,))[0.95]


def breakers_open(rule: AlertRule) -> float:
    from resilience.breaker.core import breaker

    open_now = 0
    for service in BreakerPolicy.objects.values_list("service", flat=True):
        snap = breaker(service).snapshot()
        if snap.forced == "open" or (not snap.forced and snap.state == "open"):
            open_now += 1
    return float(open_now)


def queue_depth(rule: AlertRule) -> float | None:
    from resilience.monitoring.collector import queue_depth as depths

    found = depths()
    return float(sum(found.values())) if found else None


def cache_hit_rate(rule: AlertRule) -> float | None:
    """Hits (stale copies count) over lookups since the previous evaluation:
    the cache's counters are cumulative, so the rule remembers the last reading."""
    from resilience.cache import cache_service

    namespaces = cache_service().stats().get("namespaces", {})
    hits = sum(c.get("hits", 0) + c.get("stale", 0) for c in namespaces.values())
    lookups = sum(c.get("hits", 0) + c.get("stale", 0) + c.get("misses", 0) for c in namespaces.values())
    before = rule.memory.get("cache") or {}
    rule.memory = {**rule.memory, "cache": {"hits": hits, "lookups": lookups}}
    delta_lookups = lookups - before.get("lookups", lookups)
    delta_hits = hits - before.get("hits", hits)
    if delta_lookups <= 0 or delta_lookups < rule.min_samples:
        return None
    return delta_hits / delta_lookups


READERS: dict[str, Callable[[AlertRule], float | None]] = {
    Metric.ERROR_RATE: error_rate,
    Metric.LATENCY_P95: latency_p95,
    Metric.BREAKERS_OPEN: breakers_open,
    Metric.QUEUE_DEPTH: queue_depth,
    Metric.CACHE_HIT_RATE: cache_hit_rate,
}


def read_metric(rule: AlertRule) -> float | None:
    return READERS[rule.metric](rule)
