"""Retries with tenacity, per service, on top of the circuit breaker.

Every attempt goes through the breaker (so each one is recorded), only
retryable errors are retried (timeouts, connection errors, 5xx, 429), the
wait is exponential with jitter (initial delay doubling, plus up to one
initial delay of random jitter) unless the provider sent Retry-After, which
is honoured up to `max_retry_after` seconds; a longer Retry-After ends the
retries and raises, so a Celery task can re-queue itself instead of sleeping.
No retry once the breaker is open: CircuitOpenError is raised at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from resilience.breaker import CircuitOpenError, breaker
from resilience.errors import ProviderError

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, CircuitOpenError):
        return False
    if isinstance(exc, ProviderError):
        return exc.retryable
    return False


class WaitRetryAfterOrBackoff:
    """Wait what Retry-After asks for, else exponential backoff with jitter."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.backoff = wait_exponential_jitter(multiplier=initial, max=maximum, exp_base=2, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return self.backoff(state)


def retrying(
    service: str,
    *,
    max_retries: int = 3,
    initial_delay: float = 0.1,
    max_delay: float = 5.0,
    max_retry_after: float = 10.0,
) -> Retrying:
    """The tenacity policy for one service (reraise: callers see the real error)."""
    circuit = breaker(service)

    def should_retry(exc: BaseException) -> bool:
        if not is_retryable(exc) or circuit.known_open():
            return False
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= max_retry_after

    return Retrying(
        retry=retry_if_exception(should_retry),
        stop=stop_after_attempt(max_retries + 1),
        wait=WaitRetryAfterOrBackoff(initial_delay, max_delay),
        reraise=True,
    )


def execute_with_retry(
    name: str,
    fn: Callable[..., T],
    max_retries: int = 3,
    initial_delay: float = 0.1,
    *args: Any,
    fallback: Callable[[BaseException], T] | None = None,
    **kwargs: Any,
) -> T:
    """Call fn through the `name` breaker, retrying retryable failures up to
    max_retries times with backoff from initial_delay seconds. With a fallback,
    the last failure (or an open breaker) returns fallback(exception)."""
    circuit = breaker(name)
    try:
        for attempt in retrying(name, max_retries=max_retries, initial_delay=initial_delay):
            with attempt:
                return circuit.call(fn, *args, **kwargs)
    except Exception as exc:
        if fallback is not None and (isinstance(exc, CircuitOpenError) or is_retryable(exc)):
            return fallback(exc)
        raise
    raise AssertionError("unreachable: tenacity either returns or raises")
