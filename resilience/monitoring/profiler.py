"""The profiler: named operations timed like W3C User Timing.

`with profile("analytics.compute") as p: ...; p.mark("rollups")` and
`@profiled("analytics.compute")` time a named operation (a mark is a point in
time since the start). The request's totals (database, cache, providers) are
gathered by resilience.tracing; finished operations go to the worker's
buffer (resilience.monitoring.buffer) and to the current trace."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from resilience.tracing import current_trace

T = TypeVar("T")


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
        trace = current_trace()
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
