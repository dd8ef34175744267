"""The metrics in Redis: key layout, the flush's writes, and the reads behind
/metrics, the monitoring pages, the JSON API and the alert rules.

Keys (prefix settings.CALLIQ_METRICS_PREFIX), every one with a TTL:

    {p}:total                    all-time counters (µs and counts), 30 days after the last write
    {p}:lat:{route}              all-time latency sketch of a route (Prometheus histogram)
    {p}:tasks                    Celery task outcomes
    {p}:m:{minute}:req           per minute: {route}|{method}|{class} → requests     (3 hours)
    {p}:m:{minute}:lat:{k}:{n}   per minute: sketch of route/op n                    (3 hours)
    {p}:h:{hour}:req / :lat:…    the same per hour, written with the minute          (8 days)
    {p}:names:{k}                names seen (capped: the rest is __other__)          (30 days)
    {p}:slow:{k}:{n}             the slowest samples of a route/op (sorted set)      (1 day)
    {p}:workers / :rss           live workers' RSS, stale ones pruned at each read
    {p}:batch:{id}               marker of one flushed batch                         (10 minutes)

The hour keys are written by the same flush as the minute keys (two HINCRBYs
in one pipeline) rather than by a rollup job: nothing to schedule, nothing to
miss. Bucket counts merge by addition, so any set of minutes, hours and
workers gives exact merged sketches."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from resilience.monitoring import sketch

OTHER = "__other__"
TOTAL_TTL = 30 * 86400
MINUTE_TTL = 3 * 3600
HOUR_TTL = 8 * 86400
SLOW_TTL = 86400
SLOW_KEEP = 20
WORKER_STALE_SECONDS = 60


def prefix() -> str:
    return getattr(settings, "CALLIQ_METRICS_PREFIX", f"{settings.CACHE_KEY_PREFIX}:metrics")


def client() -> redis.Redis | None:
    """The app's Redis (django-redis "default"), or None without Redis."""
    if not settings.REDIS_AVAILABLE:
        return None
    from django_redis import get_redis_connection

    try:
        return get_redis_connection("default")
    except NotImplementedError:  # a non-Redis cache backend
        return None


@dataclass
class NameCap:
    """Keeps the number of distinct names per kind bounded across workers."""

    known: dict[str, set[str]]
    limit: int

    def __call__(self, kind: str, name: str, pipe: Any) -> str:
        names = self.known.setdefault(kind, set())
        if name in names:
            return name
        if len(names) >= self.limit:
            return OTHER
        names.add(name)
        key = f"{prefix()}:names:{kind}"
        pipe.sadd(key, name)
        pipe.expire(key, TOTAL_TTL)
        return name


def known_names(conn: redis.Redis) -> dict[str, set[str]]:
    pipe = conn.pipeline(transaction=False)
    for kind in ("route", "op"):
        pipe.smembers(f"{prefix()}:names:{kind}")
    route, op = pipe.execute()
    return {"route": {n.decode() for n in route}, "op": {n.decode() for n in op}}


def write(
    pipe: Any,
    requests: Counter,
    latency: Counter,
    totals: Counter,
    tasks: Counter,
    slow: list,
    *,
    cap: NameCap,
) -> None:
    p = prefix()
    touched: dict[str, int] = {}

    def incr(key: str, field: str, amount: int, ttl: int) -> None:
        pipe.hincrby(key, field, amount)
        touched[key] = ttl

    for (minute, route, method, status_class), n in requests.items():
        route = cap("route", route, pipe)
        field = f"{route}|{method}|{status_class}"
        incr(f"{p}:total", f"requests|{field}", n, TOTAL_TTL)
        incr(f"{p}:m:{minute}:req", field, n, MINUTE_TTL)
        incr(f"{p}:h:{minute // 60}:req", field, n, HOUR_TTL)
    for (minute, kind, name, bucket), n in latency.items():
        name = cap(kind, name, pipe)
        incr(f"{p}:m:{minute}:lat:{kind}:{name}", str(bucket), n, MINUTE_TTL)
        incr(f"{p}:h:{minute // 60}:lat:{kind}:{name}", str(bucket), n, HOUR_TTL)
        if kind == "route":
            incr(f"{p}:lat:{name}", str(bucket), n, TOTAL_TTL)
    for (field_kind, name), n in totals.items():
        if n:
            kind = "op" if field_kind.startswith("op_") else "service" if field_kind.startswith("provider") else "route"
            capped = name if kind == "service" else cap(kind, name, pipe)
            incr(f"{p}:total", f"{field_kind}|{capped}", n, TOTAL_TTL)
    for (task, outcome), n in tasks.items():
        incr(f"{p}:tasks", f"{task}|{outcome}", n, TOTAL_TTL)
    for kind, name, ms, sample in slow:
        name = cap(kind, name, pipe)
        key = f"{p}:slow:{kind}:{name}"
        pipe.zadd(key, {json.dumps(sample, separators=(",", ":"), sort_keys=True): ms})
        pipe.zremrangebyrank(key, 0, -(SLOW_KEEP + 1))
        touched[key] = SLOW_TTL
    for kind in ("route", "op"):
        touched[f"{p}:names:{kind}"] = TOTAL_TTL
    for key, ttl in touched.items():
        pipe.expire(key, ttl)


def batch_key(batch: str) -> str:
    return f"{prefix()}:batch:{batch}"


def write_worker(pipe: Any, worker: str, rss: int) -> None:
    p = prefix()
    pipe.zadd(f"{p}:workers", {worker: time.time()})
    pipe.hset(f"{p}:rss", worker, rss)
    pipe.expire(f"{p}:workers", TOTAL_TTL)
    pipe.expire(f"{p}:rss", TOTAL_TTL)


# --- reads ----------------------------------------------------------------------
def _decode(row: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in row.items()}


def totals(conn: redis.Redis) -> tuple[dict[str, int], dict[str, int], dict[str, dict[int, int]]]:
    """All-time counters, task outcomes and each route's all-time sketch (three round trips)."""
    p = prefix()
    pipe = conn.pipeline(transaction=False)
    pipe.hgetall(f"{p}:total")
    pipe.hgetall(f"{p}:tasks")
    pipe.smembers(f"{p}:names:route")
    counters, tasks, routes = pipe.execute()
    names = [*sorted(n.decode() for n in routes), OTHER]
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(f"{p}:lat:{name}")
    sketches = {name: sketch.from_redis(row) for name, row in zip(names, pipe.execute(), strict=True) if row}
    return _decode(counters), _decode(tasks), sketches


def live_workers(conn: redis.Redis) -> dict[str, int]:
    """RSS of workers that flushed in the last minute; dead workers' entries are pruned here."""
    p = prefix()
    cutoff = time.time() - WORKER_STALE_SECONDS
    stale = conn.zrangebyscore(f"{p}:workers", "-inf", cutoff)
    pipe = conn.pipeline(transaction=True)
    if stale:
        pipe.zrem(f"{p}:workers", *stale)
        pipe.hdel(f"{p}:rss", *stale)
    pipe.hgetall(f"{p}:rss")
    return _decode(pipe.execute()[-1])


@dataclass
class Window:
    """Per-route (or per-operation) figures over a span of minutes or hours."""

    name: str
    requests: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    sketch: dict[int, int]

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _periods(unit: str, count: int, now: float | None = None) -> list[int]:
    size = 60 if unit == "m" else 3600
    last = int((now or time.time()) // size)
    return list(range(last - count + 1, last + 1))


ALL = "__all__"


def series(
    conn: redis.Redis, *, unit: str = "m", count: int = 60, kind: str = "route", now: float | None = None
) -> dict[str, list[dict[str, Any]]]:
    """For each name, and for ALL names merged: one point per minute (unit
    "m") or hour ("h"), oldest first: period start, requests, 5xx, p50/p95/p99 in ms."""
    p = prefix()
    periods = _periods(unit, count, now)
    names = [*names_of(conn, kind), OTHER]
    pipe = conn.pipeline(transaction=False)
    for period in periods:
        pipe.hgetall(f"{p}:{unit}:{period}:req")
        for name in names:
            pipe.hgetall(f"{p}:{unit}:{period}:lat:{kind}:{name}")
    replies = iter(pipe.execute())
    size = 60 if unit == "m" else 3600
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in [*names, ALL]}

    def point(period: int, requests: int, errors: int, sk: dict[int, int]) -> dict[str, Any]:
        q = sketch.quantiles(sk, (0.5, 0.95, 0.99))
        return {
            "at": period * size,
            "requests": requests,
            "errors": errors,
            "p50": q[0.5],
            "p95": q[0.95],
            "p99": q[0.99],
        }

    for period in periods:
        requests: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for field, n in _decode(next(replies)).items():
            route, _, status_class = field.rsplit("|", 2)
            requests[route] += n
            errors[route] += n if status_class == "5xx" else 0
        sketches = {name: sketch.from_redis(next(replies)) for name in names}
        for name, sk in sketches.items():
            total = requests[name] if kind == "route" else sum(sk.values())
            out[name].append(point(period, total, errors[name], sk))
        all_requests = sum(requests.values()) if kind == "route" else sum(sum(sk.values()) for sk in sketches.values())
        out[ALL].append(point(period, all_requests, sum(errors.values()), sketch.merge(sketches.values())))
    return {name: points for name, points in out.items() if name == ALL or any(pt["requests"] for pt in points)}


def window(conn: redis.Redis, *, minutes: int, kind: str = "route", now: float | None = None) -> dict[str, Window]:
    """Each name's totals and percentiles over the last `minutes` minutes (merged sketches)."""
    p = prefix()
    periods = _periods("m", minutes, now)
    names = [*names_of(conn, kind), OTHER]
    pipe = conn.pipeline(transaction=False)
    for period in periods:
        pipe.hgetall(f"{p}:m:{period}:req")
        for name in names:
            pipe.hgetall(f"{p}:m:{period}:lat:{kind}:{name}")
    replies = iter(pipe.execute())
    merged: dict[str, dict[int, int]] = {name: {} for name in names}
    requests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for _ in periods:
        for field, n in _decode(next(replies)).items():
            route, _, status_class = field.rsplit("|", 2)
            requests[route] += n
            if status_class == "5xx":
                errors[route] += n
        for name in names:
            merged[name] = sketch.merge([merged[name], sketch.from_redis(next(replies))])
    out = {}
    for name, sk in merged.items():
        total = requests[name] if kind == "route" else sum(sk.values())
        if not total:
            continue
        q = sketch.quantiles(sk, (0.5, 0.95, 0.99))
        out[name] = Window(name, total, errors[name], q[0.5], q[0.95], q[0.99], sk)
    return out


def recent_p99(conn: redis.Redis) -> dict[tuple[str, str], float]:
    found = {}
    for kind in ("route", "op"):
        for name, w in window(conn, minutes=60, kind=kind).items():
            if w.p99 is not None:
                found[(kind, name)] = w.p99
    return found


def slow_samples(conn: redis.Redis, *, kind: str = "route", limit: int = SLOW_KEEP) -> list[dict[str, Any]]:
    """The slowest kept samples across every name of a kind, slowest first."""
    p = prefix()
    names = [*names_of(conn, kind), OTHER]
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.zrevrange(f"{p}:slow:{kind}:{name}", 0, limit - 1, withscores=True)
    rows = []
    for name, found in zip(names, pipe.execute(), strict=True):
        for raw, ms in found:
            sample = json.loads(raw)
            sample.update(name=name, ms=round(ms, 2))
            rows.append(sample)
    rows.sort(key=lambda r: r["ms"], reverse=True)
    return rows[:limit]


def names_of(conn: redis.Redis, kind: str) -> Iterable[str]:
    return sorted(n.decode() for n in conn.smembers(f"{prefix()}:names:{kind}"))


def write_gauges(conn: redis.Redis, values: dict[str, float], now: float | None = None) -> None:
    """Sample business gauges (the alert evaluation does, every interval) so the
    pages can chart them: the latest value per minute and per hour."""
    if not values:
        return
    p = prefix()
    minute = int((now or time.time()) // 60)
    pipe = conn.pipeline(transaction=True)
    for key, ttl in ((f"{p}:m:{minute}:gauge", MINUTE_TTL), (f"{p}:h:{minute // 60}:gauge", HOUR_TTL)):
        pipe.hset(key, mapping={name: repr(float(v)) for name, v in values.items()})
        pipe.expire(key, ttl)
    pipe.execute()


def gauge_series(conn: redis.Redis, *, unit: str = "m", count: int = 60, now: float | None = None) -> dict[str, list]:
    p = prefix()
    periods = _periods(unit, count, now)
    size = 60 if unit == "m" else 3600
    pipe = conn.pipeline(transaction=False)
    for period in periods:
        pipe.hgetall(f"{p}:{unit}:{period}:gauge")
    out: dict[str, list] = {}
    rows = pipe.execute()
    names = sorted({k.decode() for row in rows for k in row})
    for name in names:
        out[name] = [
            (period * size, float(row[name.encode()]) if name.encode() in row else None)
            for period, row in zip(periods, rows, strict=True)
        ]
    return out
