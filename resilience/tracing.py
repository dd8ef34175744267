"""Per-request trace: what one request or task spent on the database, the
cache and external APIs, gathered in a context variable with no I/O.

A leaf of the resilience package (it imports nothing of ours), so the cache
and the breakers can report into it without depending on the monitoring
package that reads it (resilience/monitoring: the middleware opens a `Trace`,
the profiler times named operations, the buffer ships the totals to Redis).

- `db_execute` is a `connection.execute_wrapper` (database time, query count);
- `cache_read` wraps the cache's read and `cache_outcome` counts its hits,
  misses and stale reads (resilience/cache calls both);
- `provider_call` adds time spent in an external API through a breaker
  (resilience/breaker calls it) and tells `provider_observers`.

Outside a trace every hook is a no-op apart from one ContextVar lookup."""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Trace:
    """Totals of one request or task; times in seconds."""

    request_id: str = ""
    db_seconds: float = 0.0
    queries: int = 0
    cache_seconds: float = 0.0
    cache_reads: int = 0
    cache_hits: int = 0
    provider_seconds: float = 0.0
    provider_calls: int = 0
    cpu_seconds: float = 0.0
    operations: list[tuple[str, float]] = field(default_factory=list)


# Called with (service, seconds) after every provider call; monitoring adds
# its per-service aggregate here from its AppConfig.ready().
provider_observers: list[Callable[[str, float], None]] = []

_current: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("calliq_trace", default=None)


def current_trace() -> Trace | None:
    return _current.get()


@contextmanager
def tracing(trace: Trace) -> Iterator[Trace]:
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)


# --- hooks called by the database, the cache and the breakers -------------------
def db_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
    """connection.execute_wrapper: time every query of the traced request."""
    trace = _current.get()
    if trace is None:
        return execute(sql, params, many, context)
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        trace.db_seconds += time.perf_counter() - start
        trace.queries += 1


def cache_read(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for the cache's one read round trip: adds its time to the trace."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        trace = _current.get()
        if trace is None:
            return fn(*args, **kwargs)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            trace.cache_seconds += time.perf_counter() - start
            trace.cache_reads += 1

    return wrapper


def cache_outcome(counter: str) -> None:
    """The cache counted a lookup ("hits", "misses", "stale", "bypass")."""
    trace = _current.get()
    if trace is not None and counter in ("hits", "stale"):
        trace.cache_hits += 1


def provider_call(service: str, seconds: float) -> None:
    """A call through `service`'s breaker took `seconds` (counted per request and per service)."""
    trace = _current.get()
    if trace is not None:
        trace.provider_seconds += seconds
        trace.provider_calls += 1
    for observer in provider_observers:
        observer(service, seconds)
