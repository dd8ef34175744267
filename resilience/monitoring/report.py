"""What the monitoring pages and GET /api/v1/monitoring/metrics show, built
once here so the HTML and the JSON always agree. Each section degrades to
"unavailable" when Redis is, never to an error."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import redis
from django.utils import timezone

from resilience.models import AlertIncident, AlertRule
from resilience.monitoring import charts, store
from resilience.monitoring.collector import gauge_values

logger = logging.getLogger("calliq.monitoring")

HOUR_POINTS, DAY_POINTS = 60, 24


def _conn() -> redis.Redis | None:
    return store.client()


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def routes() -> dict[str, Any]:
    conn = _conn()
    if conn is None:
        return {"available": False, "routes": [], "charts": []}
    try:
        last_hour = store.window(conn, minutes=60)
        minute = store.series(conn, unit="m", count=HOUR_POINTS)[store.ALL]
        hourly = store.series(conn, unit="h", count=DAY_POINTS)[store.ALL]
    except (redis.RedisError, OSError) as exc:
        logger.warning("monitoring: routes unavailable: %s", exc)
        return {"available": False, "routes": [], "charts": []}
    rows = [
        {
            "route": w.name,
            "requests": w.requests,
            "per_minute": round(w.requests / 60, 2),
            "error_rate": None if w.error_rate is None else round(w.error_rate, 4),
            "p50_ms": _ms(w.p50),
            "p95_ms": _ms(w.p95),
            "p99_ms": _ms(w.p99),
        }
        for w in sorted(last_hour.values(), key=lambda w: -w.requests)
    ]
    return {
        "available": True,
        "routes": rows,
        "charts": [
            charts.line_chart("Requests per minute, last hour", "requests", [(p["at"], p["requests"]) for p in minute]),
            charts.line_chart("p95 latency, last hour", "ms", [(p["at"], p["p95"]) for p in minute]),
            charts.line_chart("Requests per hour, last day", "requests", [(p["at"], p["requests"]) for p in hourly]),
            charts.line_chart("p95 latency, last day", "ms", [(p["at"], p["p95"]) for p in hourly]),
        ],
    }


def slow() -> dict[str, Any]:
    conn = _conn()
    if conn is None:
        return {"available": False, "requests": [], "operations": [], "charts": []}
    try:
        requests = store.slow_samples(conn, kind="route")
        operations = store.slow_samples(conn, kind="op")
        ops_hour = store.series(conn, unit="m", count=HOUR_POINTS, kind="op")[store.ALL]
        ops_day = store.series(conn, unit="h", count=DAY_POINTS, kind="op")[store.ALL]
        op_windows = store.window(conn, minutes=60, kind="op")
    except (redis.RedisError, OSError) as exc:
        logger.warning("monitoring: slow operations unavailable: %s", exc)
        return {"available": False, "requests": [], "operations": [], "charts": []}
    return {
        "available": True,
        "requests": requests,
        "operations": operations,
        "operation_percentiles": [
            {"name": w.name, "runs": w.requests, "p50_ms": _ms(w.p50), "p95_ms": _ms(w.p95), "p99_ms": _ms(w.p99)}
            for w in sorted(op_windows.values(), key=lambda w: w.name)
        ],
        "charts": [
            charts.line_chart("Operations p99, last hour", "ms", [(p["at"], p["p99"]) for p in ops_hour]),
            charts.line_chart("Operations p99, last day", "ms", [(p["at"], p["p99"]) for p in ops_day]),
        ],
    }


def _firing_counts(incidents: list[AlertIncident], periods: list[int], size: int) -> list[tuple[int, float]]:
    points = []
    for start in periods:
        begin = dt.datetime.fromtimestamp(start, tz=dt.UTC)
        end = begin + dt.timedelta(seconds=size)
        n = sum(1 for i in incidents if i.started_at < end and (i.resolved_at is None or i.resolved_at >= begin))
        points.append((start, float(n)))
    return points


def alerts() -> dict[str, Any]:
    rules = list(AlertRule.objects.all())
    since = timezone.now() - dt.timedelta(days=1)
    recent = list(
        (
            AlertIncident.objects.filter(started_at__gte=since) | AlertIncident.objects.filter(resolved_at=None)
        ).select_related("rule")
    )
    recent = sorted({i.pk: i for i in recent}.values(), key=lambda i: i.started_at, reverse=True)
    now = int(time.time())
    minutes = [(now // 60 - HOUR_POINTS + 1 + i) * 60 for i in range(HOUR_POINTS)]
    hours = [(now // 3600 - DAY_POINTS + 1 + i) * 3600 for i in range(DAY_POINTS)]
    return {
        "rules": [
            {
                "name": r.name,
                "condition": f"{r.metric} {r.comparison} {r.threshold:g}",
                "state": r.state,
                "since": r.state_since.isoformat() if r.state_since else None,
                "value": r.last_value,
                "enabled": r.enabled,
            }
            for r in rules
        ],
        "incidents": [
            {
                "rule": i.rule.name,
                "started_at": i.started_at.isoformat(),
                "resolved_at": i.resolved_at.isoformat() if i.resolved_at else None,
                "value": i.value,
                "peak_value": i.peak_value,
            }
            for i in recent[:50]
        ],
        "charts": [
            charts.line_chart("Alerts firing, last hour", "alerts", _firing_counts(recent, minutes, 60)),
            charts.line_chart("Alerts firing, last day", "alerts", _firing_counts(recent, hours, 3600)),
        ],
    }


def flat_gauges() -> dict[str, float]:
    """Business gauges as name → number (labelled ones as name{label})."""
    flat: dict[str, float] = {}
    for name, value in gauge_values().items():
        if isinstance(value, dict):
            flat.update({f"{name}{{{label}}}": float(v) for label, v in value.items()})
        else:
            flat[name] = float(value)
    return flat


def business() -> dict[str, Any]:
    current = flat_gauges()
    conn = _conn()
    found: list[charts.Chart] = []
    if conn is not None:
        try:
            hour = store.gauge_series(conn, unit="m", count=HOUR_POINTS)
            day = store.gauge_series(conn, unit="h", count=DAY_POINTS)
        except (redis.RedisError, OSError) as exc:
            logger.warning("monitoring: business history unavailable: %s", exc)
            hour, day = {}, {}
        for name in sorted(current):
            if name in hour:
                found.append(charts.line_chart(f"{name}, last hour", "", hour[name]))
            if name in day:
                found.append(charts.line_chart(f"{name}, last day", "", day[name]))
    return {"gauges": current, "charts": found}


def sample_gauges() -> None:
    """Store the current business gauges for the charts (called by the alert evaluation)."""
    conn = _conn()
    if conn is None:
        return
    try:
        store.write_gauges(conn, flat_gauges())
    except (redis.RedisError, OSError) as exc:
        logger.warning("monitoring: business gauges not sampled: %s", exc)


def as_json() -> dict[str, Any]:
    """Everything the pages show, for GET /api/v1/monitoring/metrics (charts as points)."""

    def plain(section: dict[str, Any]) -> dict[str, Any]:
        out = dict(section)
        out["charts"] = [{"title": c.title, "unit": c.unit, "points": c.rows} for c in section.get("charts", [])]
        return out

    return {
        "generated_at": timezone.now().isoformat(),
        "routes": plain(routes()),
        "slow": plain(slow()),
        "alerts": plain(alerts()),
        "business": plain(business()),
    }
