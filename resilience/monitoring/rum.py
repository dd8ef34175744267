"""Real-user timings: the Core Web Vitals (LCP, INP, CLS) and FCP, TTFB that
static/js/rum.js measures with the `web-vitals` package and sends with
navigator.sendBeacon; p75 per route template for the monitoring page.

A beacon is validated strictly (parse_beacon): a JSON object of exactly
`route` and `metrics`, the route one of the URLconf's route templates (the
page renders its own template, so raw paths and ids never become names),
each metric a known name with a number in range. Values are counted into
log-spaced buckets (gamma 1.02: any percentile read back is within 1 % of a
value that was recorded) in one Redis hash per minute and one per hour, each
with a TTL; the p75 over the last hour or day merges those hashes.

This histogram is our own, small and Redis-shaped; the monitoring sketches
module may absorb it (same mapping: index = ceil(log_gamma(value)))."""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning
from django.urls import URLPattern, URLResolver, get_resolver
from django_redis import get_redis_connection

MAX_BODY = 4096
WEB_VITALS = "vendor/web-vitals/web-vitals.js"  # collected from node_modules (settings.STATICFILES_DIRS)
# name → (unit, upper bound); lower bound 0. Bounds reject nonsense, not slow pages.
METRICS: dict[str, tuple[str, float]] = {
    "LCP": ("ms", 120_000.0),
    "INP": ("ms", 120_000.0),
    "CLS": ("", 100.0),
    "FCP": ("ms", 120_000.0),
    "TTFB": ("ms", 120_000.0),
}
GAMMA = 1.02
LOG_GAMMA = math.log(GAMMA)
ZERO_BELOW = 1e-4  # CLS can be 0 exactly; smaller values share the zero bucket
MINUTE_TTL = 2 * 3600
HOUR_TTL = 8 * 24 * 3600
WINDOWS = {"hour": (60, 60), "day": (3600, 24)}  # bucket seconds, buckets read


class BeaconError(ValueError):
    """Why a beacon was refused (sent back with the 400)."""


@dataclass(frozen=True)
class Beacon:
    route: str
    metrics: dict[str, float]


def _join(prefix: str, route: str) -> str:
    # As django.urls.URLResolver joins routes into ResolverMatch.route.
    return prefix + route.removeprefix("^") if prefix else route


def _walk(patterns: list, prefix: str = "") -> set[str]:
    routes: set[str] = set()
    for pattern in patterns:
        route = _join(prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            routes |= _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            routes.add(route)
    return routes


@lru_cache(maxsize=4)
def known_routes(urlconf: str | None = None) -> frozenset[str]:
    """Every route template of the URLconf: the only names a beacon may use."""
    return frozenset(_walk(get_resolver(urlconf).url_patterns))


def parse_beacon(raw: bytes) -> Beacon:
    if len(raw) > MAX_BODY:
        raise BeaconError(f"a beacon is at most {MAX_BODY} bytes")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BeaconError("the body is not JSON") from exc
    if not isinstance(payload, dict) or set(payload) != {"route", "metrics"}:
        raise BeaconError('a beacon is an object with exactly "route" and "metrics"')
    route, metrics = payload["route"], payload["metrics"]
    if not isinstance(route, str) or route not in known_routes(settings.ROOT_URLCONF):
        raise BeaconError("route is not a route template of this site")
    if not isinstance(metrics, list) or not 1 <= len(metrics) <= len(METRICS):
        raise BeaconError(f"metrics is a list of 1 to {len(METRICS)} entries")
    values: dict[str, float] = {}
    for entry in metrics:
        if not isinstance(entry, dict) or set(entry) != {"name", "value"}:
            raise BeaconError('each metric is an object with exactly "name" and "value"')
        name, value = entry["name"], entry["value"]
        if name not in METRICS or name in values:
            raise BeaconError(f"metric names are {', '.join(METRICS)}, each at most once")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise BeaconError(f"{name} must be a number")
        if not 0 <= value <= METRICS[name][1]:
            raise BeaconError(f"{name} must be between 0 and {METRICS[name][1]:g}")
        values[name] = float(value)
    return Beacon(route=route, metrics=values)


def bucket_of(value: float) -> int:
    """Log bucket index: bucket i holds (gamma^(i-1), gamma^i]; -inf → 'zero' (-100000)."""
    return -100_000 if value < ZERO_BELOW else math.ceil(math.log(value) / LOG_GAMMA)


def value_of(bucket: int) -> float:
    """The bucket's representative value, within (gamma-1)/(gamma+1) < 1 % of any value in it."""
    return 0.0 if bucket == -100_000 else 2 * GAMMA**bucket / (GAMMA + 1)


def _key(kind: str, index: int) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:rum:{kind}:{index}"


def record(beacon: Beacon, now: float | None = None) -> None:
    """Count the beacon's values into this minute's and this hour's hash
    (one pipeline). Raises redis errors: the view turns them into a 503."""
    now = time.time() if now is None else now
    client = get_redis_connection("default")
    pipe = client.pipeline(transaction=False)
    for kind, (seconds, _), ttl in (("m", WINDOWS["hour"], MINUTE_TTL), ("h", WINDOWS["day"], HOUR_TTL)):
        key = _key(kind, int(now // seconds))
        for name, value in beacon.metrics.items():
            pipe.hincrby(key, f"{name}|{beacon.route}|{bucket_of(value)}", 1)
        pipe.expire(key, ttl)
    pipe.execute()


def percentile(buckets: Counter[int], q: float) -> float:
    total = sum(buckets.values())
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return value_of(bucket)
    return value_of(max(buckets))


@dataclass(frozen=True)
class RouteTimings:
    route: str
    p75: dict[str, float]  # metric → p75 (ms, or unitless for CLS)
    samples: dict[str, int]


def p75_by_route(window: str = "hour", now: float | None = None) -> list[RouteTimings]:
    """p75 of each metric per route template over the last hour (minute
    hashes) or day (hour hashes), busiest route first."""
    now = time.time() if now is None else now
    seconds, count = WINDOWS[window]
    kind = "m" if window == "hour" else "h"
    current = int(now // seconds)
    client = get_redis_connection("default")
    pipe = client.pipeline(transaction=False)
    for index in range(current - count + 1, current + 1):
        pipe.hgetall(_key(kind, index))
    merged: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    for fields in pipe.execute():
        for field, n in fields.items():
            name, route, bucket = _split(field.decode())
            merged[(route, name)][int(bucket)] += int(n)
    routes: dict[str, RouteTimings] = {}
    for (route, name), buckets in merged.items():
        row = routes.setdefault(route, RouteTimings(route, {}, {}))
        row.p75[name] = percentile(buckets, 0.75)
        row.samples[name] = sum(buckets.values())
    return sorted(routes.values(), key=lambda row: (-max(row.samples.values()), row.route))


def _split(field: str) -> tuple[str, str, str]:
    # The route may contain "|" only in a regex route; name and bucket never do.
    name, rest = field.split("|", 1)
    route, bucket = rest.rsplit("|", 1)
    return name, route, bucket


def check_web_vitals_installed(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """base.html links web-vitals; without it every page load logs a 404 (and
    a manifest storage cannot even render the page)."""
    if finders.find(WEB_VITALS) or staticfiles_storage.exists(WEB_VITALS):
        return []
    return [
        CheckWarning(
            "The web-vitals browser package is not installed, so real-user timings are off.",
            hint="Run `npm ci` (make run and make test do), then collectstatic.",
            id="resilience.W101",
        )
    ]
