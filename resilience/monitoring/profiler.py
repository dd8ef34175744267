"""The profiler: what one request (or one Celery task, or one named operation)
spent its time on, gathered without a Redis call on the way.

`with profile("analytics.compute") as p: ...; p.mark("rollups")` and
`@profiled("analytics.compute")` time a named operation (names and marks follow
W3C User Timing: a mark is a point in time since the start). The middleware
opens a `Trace` per request in a context variable; the hooks below add to it:

- `db_execute` is a `connection.execute_wrapper` (database time, query count);
- `cache_read` wraps the cache's read and `cache_outcome` counts its hits,
  misses and stale reads (resilience/cache calls both);
- `provider_call` adds time spent in an external API through a breaker
  (resilience/breaker calls it).

Outside a trace every hook is a no-op apart from one ContextVar lookup.
Finished operations go to the worker's buffer (resilience.monitoring.buffer)."""

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
    from resilience.monitoring import buffer

    buffer.add_provider_call(service, seconds)


# --- named operations -------------------------------------------------------------
class Operation:
    """One run of a named operation; `mark(name)` records the time since its start."""

    __slots__ = ("marks", "name", "seconds", "started")

    def __init__(self, name: str) -> None:
        self.name = name
        self.marks: list[tuple[str, float]] = []
        self.started = time.perf_counter()
        self.seconds = 0.0

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter() - self.started))


@contextmanager
def profile(name: str) -> Iterator[Operation]:
    """Time a named operation; its duration and marks reach the metrics
    (percentiles per name, slow operations) and the current request's
    Server-Timing header. An exception is timed too, and re-raised."""
    from resilience.monitoring import buffer

    op = Operation(name)
    try:
        yield op
    finally:
        op.seconds = time.perf_counter() - op.started
        trace = _current.get()
        if trace is not None:
            trace.operations.append((name, op.seconds))
        buffer.add_operation(op, trace)


def profiled(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """`@profiled("analytics.compute")`: profile every call of the function."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            with profile(name):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
