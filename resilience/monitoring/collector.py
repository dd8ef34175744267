"""/metrics for Prometheus: a prometheus-client custom collector over the Redis
aggregates.

Why not prometheus-client's own metrics: without multiprocess mode each
gunicorn worker keeps its own counters and a scrape reports whichever worker
answered; with it, every worker that ever lived leaves a .db file behind that
each scrape must read, so after many `--max-requests` recyclings a scrape
takes seconds. Here workers flush to Redis (resilience.monitoring.buffer), a
scrape reads a fixed number of Redis keys whatever the worker history, and the
figures are exact across workers and restarts. prometheus-client still does
the exposition format.

Business gauges are registered by the apps from their ready() with
`register_gauge(name, help, fn)`; fn returns a number or {label value: number}."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from resilience.monitoring import sketch, store

logger = logging.getLogger("calliq.monitoring")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_STATES = ("closed", "open", "half_open")
GAUGE_CACHE_SECONDS = 15.0


@dataclass(frozen=True)
class Gauge:
    name: str
    help: str
    read: Callable[[], float | dict[str, float]]
    label: str = ""


_gauges: dict[str, Gauge] = {}
_gauge_values: dict[str, tuple[float, float | dict[str, float]]] = {}


def register_gauge(name: str, help: str, read: Callable[[], float | dict[str, float]], *, label: str = "") -> None:
    """Expose `calliq_<name>`; `read` runs at most every 15 s per process, and a failure skips it."""
    _gauges[name] = Gauge(name, help, read, label)


def gauge_values() -> dict[str, float | dict[str, float]]:
    now = time.monotonic()
    values = {}
    for name, gauge in _gauges.items():
        cached = _gauge_values.get(name)
        if cached is None or now - cached[0] > GAUGE_CACHE_SECONDS:
            try:
                cached = (now, gauge.read())
            except Exception as exc:
                logger.warning("metrics: gauge %s failed: %s", name, exc)
                continue
            _gauge_values[name] = cached
        values[name] = cached[1]
    return values


def _split(field: str) -> tuple[str, str]:
    kind, _, rest = field.partition("|")
    return kind, rest


def _histogram(sk: dict[int, int], sum_seconds: float) -> tuple[list[tuple[str, float]], float]:
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for bucket, n in sk.items():
        seconds = sketch.value_of(bucket) / 1000
        index = next((i for i, le in enumerate(LATENCY_BUCKETS) if seconds <= le), len(LATENCY_BUCKETS))
        counts[index] += n
    cumulative, running = [], 0
    for le, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), counts, strict=True):
        running += n
        cumulative.append((le, running))
    return cumulative, sum_seconds


def queue_depth() -> dict[str, int]:
    url = settings.CELERY_BROKER_URL
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    if not url.startswith(("redis://", "rediss://")):
        return {}
    conn = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return {queue: int(conn.llen(queue))}
    finally:
        conn.close()


class RedisAggregatesCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        conn = store.client()
        if conn is not None:
            try:
                yield from self._requests(conn)
            except (redis.RedisError, OSError) as exc:
                logger.warning("metrics: Redis unreadable during scrape: %s", exc)
                yield GaugeMetricFamily("calliq_metrics_redis_up", "Whether the aggregates could be read.", 0)
            else:
                yield GaugeMetricFamily("calliq_metrics_redis_up", "Whether the aggregates could be read.", 1)
        yield from self._breakers()
        yield from self._cache()
        yield from self._queue()
        for name, value in gauge_values().items():
            gauge = _gauges[name]
            if isinstance(value, dict):
                family = GaugeMetricFamily(f"calliq_{name}", gauge.help, labels=[gauge.label or "name"])
                for label, v in value.items():
                    family.add_metric([label], v)
            else:
                family = GaugeMetricFamily(f"calliq_{name}", gauge.help, value=value)
            yield family

    def _requests(self, conn: redis.Redis) -> Iterator[Metric]:
        counters, tasks, sketches = store.totals(conn)
        requests = CounterMetricFamily(
            "calliq_http_requests",
            "Requests by route template, method and status class.",
            labels=["route", "method", "status"],
        )
        per_route = {
            "db_us": CounterMetricFamily("calliq_http_db_seconds", "Database time by route.", labels=["route"]),
            "db_queries": CounterMetricFamily("calliq_http_db_queries", "Database queries by route.", labels=["route"]),
            "cache_us": CounterMetricFamily("calliq_http_cache_seconds", "Cache read time by route.", labels=["route"]),
            "cpu_us": CounterMetricFamily("calliq_http_cpu_seconds", "Thread CPU time by route.", labels=["route"]),
            "cache_reads": CounterMetricFamily("calliq_http_cache_reads", "Cache reads by route.", labels=["route"]),
            "cache_hits": CounterMetricFamily("calliq_http_cache_hits", "Cache hits by route.", labels=["route"]),
            "provider_us": CounterMetricFamily(
                "calliq_provider_seconds", "Time in external APIs through the breakers.", labels=["service"]
            ),
            "provider_calls": CounterMetricFamily(
                "calliq_provider_calls", "Calls to external APIs through the breakers.", labels=["service"]
            ),
            "op_us": CounterMetricFamily("calliq_operation_seconds", "Time in profiled operations.", labels=["name"]),
            "op_count": CounterMetricFamily("calliq_operation_runs", "Runs of profiled operations.", labels=["name"]),
        }
        latency_sum: dict[str, float] = {}
        for field, n in sorted(counters.items()):
            kind, rest = _split(field)
            if kind == "requests":
                route, method, status = rest.rsplit("|", 2)
                requests.add_metric([route, method, status], n)
            elif kind == "lat_us":
                latency_sum[rest] = n / 1e6
            elif kind in per_route:
                per_route[kind].add_metric([rest], n / 1e6 if kind.endswith("_us") else n)
        yield requests
        yield from per_route.values()
        histogram = HistogramMetricFamily(
            "calliq_http_request_duration_seconds", "Request wall time by route template.", labels=["route"]
        )
        for route, sk in sorted(sketches.items()):
            buckets, total = _histogram(sk, latency_sum.get(route, 0.0))
            histogram.add_metric([route], buckets, total)
        yield histogram
        outcomes = CounterMetricFamily("calliq_celery_tasks", "Celery task outcomes.", labels=["task", "outcome"])
        for field, n in sorted(tasks.items()):
            task, _, outcome = field.rpartition("|")
            outcomes.add_metric([task, outcome], n)
        yield outcomes
        workers = store.live_workers(conn)
        yield GaugeMetricFamily("calliq_workers", "Processes that flushed metrics in the last minute.", len(workers))
        rss = GaugeMetricFamily("calliq_worker_rss_bytes", "Resident memory of each live worker.", labels=["worker"])
        for worker, value in sorted(workers.items()):
            rss.add_metric([worker], value)
        yield rss

    def _breakers(self) -> Iterator[Metric]:
        from resilience.breaker.core import breaker
        from resilience.models import BreakerPolicy

        state = GaugeMetricFamily(
            "calliq_breaker_state", "1 for the breaker's current state.", labels=["service", "state"]
        )
        transitions = CounterMetricFamily("calliq_breaker_transitions", "Breaker state changes.", labels=["service"])
        rejections = CounterMetricFamily(
            "calliq_breaker_rejections", "Calls refused by an open breaker.", labels=["service"]
        )
        try:
            services = list(BreakerPolicy.objects.values_list("service", flat=True))
        except Exception as exc:
            logger.warning("metrics: breaker policies unreadable: %s", exc)
            return
        for service in services:
            snap = breaker(service).snapshot()
            current = "open" if snap.forced == "open" else "closed" if snap.forced == "closed" else snap.state
            for name in BREAKER_STATES:
                state.add_metric([service, name], 1.0 if current == name else 0.0)
            transitions.add_metric([service], snap.transitions)
            rejections.add_metric([service], snap.rejections)
        yield from (state, transitions, rejections)

    def _cache(self) -> Iterator[Metric]:
        from resilience.cache import cache_service

        try:
            stats = cache_service().stats()
        except Exception as exc:
            logger.warning("metrics: cache statistics unreadable: %s", exc)
            return
        family = CounterMetricFamily(
            "calliq_cache_lookups", "Cache lookups by namespace and outcome.", labels=["namespace", "outcome"]
        )
        for namespace, counters in sorted(stats.get("namespaces", {}).items()):
            for outcome in ("hits", "misses", "stale", "errors", "bypass"):
                if outcome in counters:
                    family.add_metric([namespace, outcome], counters[outcome])
        yield family

    def _queue(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("calliq_celery_queue_depth", "Tasks waiting in the broker queue.", labels=["queue"])
        try:
            depths = queue_depth()
        except (redis.RedisError, OSError) as exc:
            logger.warning("metrics: broker queue unreadable: %s", exc)
            return
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


_registry = CollectorRegistry(auto_describe=False)
_registry.register(RedisAggregatesCollector())


def exposition() -> bytes:
    return generate_latest(_registry)
