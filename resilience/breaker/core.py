"""The circuit breaker API: `breaker("openai").call(fn, *args, fallback=...)`,
`@breaker("openai")` as a decorator, and `with breaker("openai").guard():`.

State is shared through Redis (store.RedisStore), reached through the
"breakers" django-redis cache alias (settings.CACHES["breakers"], its own pool
with short timeouts); while Redis cannot be reached (refused, or stalled past
the alias's socket timeout, default BREAKER_REDIS_TIMEOUT=0.1 s) each process
uses its own LocalStore with the same rules, says so in the log, skips Redis
for BREAKER_REDIS_RETRY_SECONDS (default 1 s) so a stalled Redis costs one
timeout rather than one per call, then tries Redis again and goes back to the
shared state when it answers. The machinery never raises into the caller:
the only exceptions a caller sees are its own function's and CircuitOpenError.

What a call costs in CLOSED: one EVALSHA, the one that records its result.
That reply says the state, so the process admits its next calls without asking
Redis while the last answer it heard is "closed" and younger than
BREAKER_TRUST_CLOSED_SECONDS (default 1 s, and never longer than the policy's
open duration, so a stale "closed" can never let a call through a HALF_OPEN
breaker: getting there takes a whole open duration). Any other answer (open,
half-open, forced open, Redis gone) ends that at once. The storm bound holds:
each caller can make at most one call on an answer that predates the opening,
exactly as a call already in flight at the opening would; its result reports
"open" back. Everything else (opening, half-open permits, trials) asks Redis.

Which exceptions count as failures is the policy's decision (policy.counts):
timeouts, connection errors, 5xx and 429 count; a 4xx caused by our own request
is neutral; any other exception from the protected function counts."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from resilience import tracing
from resilience.breaker import events
from resilience.breaker.connection import REDIS_ERRORS, shared
from resilience.breaker.policy import Policy, ensure_policy_row, forget_policies, get_policy
from resilience.breaker.store import Reply, Snapshot
from resilience.errors import ProviderError

logger = logging.getLogger("calliq.resilience.breaker")

T = TypeVar("T")


class CircuitOpenError(Exception):
    """The breaker refused the call. `next_trial_at` is when a trial call may
    be let through (None while an operator keeps the breaker forced open)."""

    def __init__(self, service: str, state: str, next_trial_at: dt.datetime | None) -> None:
        when = next_trial_at.isoformat() if next_trial_at else "when an operator resets it"
        super().__init__(f"circuit breaker {service} is {state}; next trial {when}")
        self.service = service
        self.state = state
        self.next_trial_at = next_trial_at

    def seconds_until_trial(self, default: float = 60.0) -> float:
        """Seconds from now until the next trial (at least 0.05), or `default` if none is due."""
        if self.next_trial_at is None:
            return default
        return max((self.next_trial_at - dt.datetime.now(dt.UTC)).total_seconds(), 0.05)


def classify(exc: BaseException) -> str:
    """The kind of an error, as the policy's `counts` understands it."""
    if isinstance(exc, ProviderError):
        return exc.kind
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return "connection"
    return "error"


def _when(ms: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC) if ms else None


class Ticket:
    """Permission to make one call: where it was granted, under which generation."""

    __slots__ = ("gen", "local", "policy", "token")

    def __init__(self, policy: Policy, gen: int, token: str, local: bool) -> None:
        self.policy, self.gen, self.token, self.local = policy, gen, token, local


def _trusts_closed(reply: Reply) -> bool:
    """Whether a reply lets the next calls in without asking: closed, or forced closed."""
    return reply.forced == "closed" or (not reply.forced and reply.state == "closed")


class CircuitBreaker:
    def __init__(self, service: str) -> None:
        self.service = service
        self._last = threading.local()
        # (trusted until, generation, shared.epoch) of the latest "closed" heard
        # from Redis, or None; `_heard` is when the latest applied reply was sent,
        # so a slow reply never overwrites a newer one.
        self._closed: tuple[float, int, int] | None = None
        self._heard = 0.0
        self._closed_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.service}>"

    @property
    def policy(self) -> Policy:
        return get_policy(self.service)

    # -- the three operations, each never raising machinery errors -----------
    def _run(self, operation: Callable[[Any], Reply]) -> tuple[Reply, bool]:
        """Run a store operation on Redis, or on the local store if Redis fails;
        the Reply and whether it came from the local store."""
        store = shared.redis_store()
        if store is not None:
            try:
                reply = operation(store)
            except REDIS_ERRORS as exc:
                shared.failed(exc)
            else:
                shared.answered()
                return reply, False
        return operation(shared.local), True

    def _after(self, reply: Reply, *, local: bool, sent: float, epoch: int, policy: Policy) -> None:
        self._last.state = reply.state
        self._last.forced = reply.forced
        with self._closed_lock:
            if sent >= self._heard:
                self._heard = sent
                if not local and _trusts_closed(reply):
                    ttl = min(shared.trust_closed, policy.open_seconds)
                    # Counted from when the question was sent: the answer was true at some moment after that.
                    self._closed = (sent + ttl, reply.gen, epoch)
                else:
                    self._closed = None
        if reply.transition is not None:
            events.on_transition(self.service, reply.transition, reply.next_trial_ms)

    def acquire(self) -> Ticket:
        """Ask permission for one call; raises CircuitOpenError if refused."""
        policy = self.policy
        closed = self._closed
        if closed is not None and closed[2] == shared.epoch and time.monotonic() < closed[0]:
            return Ticket(policy, closed[1], "", local=False)
        token = uuid.uuid4().hex
        sent, epoch = time.monotonic(), shared.epoch
        reply, local = self._run(lambda store: store.acquire(policy, token))
        self._after(reply, local=local, sent=sent, epoch=epoch, policy=policy)
        if not reply.allowed:
            state = f"forced_{reply.forced}" if reply.forced else reply.state
            raise CircuitOpenError(self.service, state, None if reply.forced else _when(reply.next_trial_ms))
        # Only a half-open trial holds a permit that its result must give back.
        return Ticket(policy, reply.gen, token if reply.state == "half_open" else "", local)

    def record(self, ticket: Ticket, outcome: str, kind: str = "") -> None:
        """Report one call's result: "ok", "fail" or "ignored"."""
        policy = ticket.policy

        def operation(store: Any) -> Reply:
            return store.record(policy, outcome, ticket.gen, ticket.token, kind)

        sent, epoch = time.monotonic(), shared.epoch
        if ticket.local:
            reply, local = operation(shared.local), True
        else:
            reply, local = self._run(operation)
        self._after(reply, local=local, sent=sent, epoch=epoch, policy=policy)

    def outcome_of(self, exc: BaseException | None, policy: Policy, seconds: float) -> tuple[str, str]:
        tracing.provider_call(self.service, seconds)  # monitoring: provider time per request and service
        if exc is None:
            if policy.slow_call_seconds is not None and seconds > policy.slow_call_seconds:
                return "fail", "slow call"
            return "ok", ""
        if not isinstance(exc, Exception):
            return "ignored", type(exc).__name__  # KeyboardInterrupt, SystemExit: not the service's fault
        kind = classify(exc)
        counts = policy.counts(kind)
        return ("fail" if counts else "ignored"), kind

    # -- public API ------------------------------------------------------------
    def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        fallback: Callable[[BaseException], T] | None = None,
        **kwargs: Any,
    ) -> T:
        """Run fn(*args, **kwargs) if the breaker allows it. With a fallback,
        a refused call or a counted failure returns fallback(exception)
        instead of raising; a neutral error (our own 4xx) is always raised."""
        try:
            ticket = self.acquire()
        except CircuitOpenError as exc:
            if fallback is not None:
                return fallback(exc)
            raise
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            outcome, kind = self.outcome_of(exc, ticket.policy, time.perf_counter() - start)
            self.record(ticket, outcome, kind)
            if fallback is not None and outcome == "fail":
                return fallback(exc)
            raise
        outcome, kind = self.outcome_of(None, ticket.policy, time.perf_counter() - start)
        self.record(ticket, outcome, kind)
        return result

    def __call__(self, fn: Callable[..., T]) -> Callable[..., T]:
        """Use the breaker as a decorator: @breaker("resend")."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """`with breaker("paddle").guard(): ...` protects a block; raises CircuitOpenError if refused."""
        ticket = self.acquire()
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.record(ticket, *self.outcome_of(exc, ticket.policy, time.perf_counter() - start))
            raise
        self.record(ticket, *self.outcome_of(None, ticket.policy, time.perf_counter() - start))

    def known_open(self) -> bool:
        """Whether the last reply this thread saw said the breaker is open (no round trip)."""
        forced = getattr(self._last, "forced", "")
        if forced:
            return forced == "open"
        return getattr(self._last, "state", "") == "open"

    def force(self, action: str, *, actor: str = "operator") -> Snapshot:
        """Force "open", force "closed" (disable), or "reset" to a fresh CLOSED.
        The forced state is saved in the policy row too, so it survives a
        restart of Redis and applies to per-process breakers."""
        from resilience.models import BreakerPolicy

        if action not in ("open", "closed", "reset"):
            raise ValueError(f"unknown breaker action {action!r}")
        forced = "" if action == "reset" else action
        ensure_policy_row(self.service)
        BreakerPolicy.objects.filter(service=self.service).update(forced_state=forced)
        forget_policies(self.service)
        policy = self.policy
        reason = f"{ACTION_LABELS[action]} by {actor}"
        sent, epoch = time.monotonic(), shared.epoch
        reply, local = self._run(lambda store: store.force(policy, action, reason))
        if not local:
            # Keep this process's fallback breaker in step, should Redis go away next.
            shared.local.force(policy, action, reason)
        self._after(reply, local=local, sent=sent, epoch=epoch, policy=policy)
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        policy = self.policy
        store = shared.redis_store()
        if store is not None:
            try:
                snap = store.snapshot(policy)
            except REDIS_ERRORS as exc:
                shared.failed(exc)
            else:
                shared.answered()
                return snap
        return shared.local.snapshot(policy)

    def sync_events(self) -> int:
        """Copy transitions from the Redis stream that the database lacks."""
        from resilience.models import BreakerEvent

        store = shared.redis_store()
        if store is None:
            return 0
        latest = (
            BreakerEvent.objects.for_service(self.service)
            .filter(shared=True)
            .order_by("-at", "-id")
            .values_list("event_id", flat=True)
            .first()
        )
        try:
            found = store.events(self.service, after=latest or "-")
        except REDIS_ERRORS as exc:
            shared.failed(exc)
            return 0
        known = set(
            BreakerEvent.objects.for_service(self.service)
            .filter(event_id__in=[t.event_id for t in found])
            .values_list("event_id", flat=True)
        )
        missing = [t for t in found if t.event_id not in known]
        events.store_events(self.service, missing)
        return len(missing)


ACTION_LABELS = {"open": "forced open", "closed": "forced closed", "reset": "reset"}
_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker(service: str) -> CircuitBreaker:
    """The breaker of a service; one object per process and name."""
    found = _registry.get(service)
    if found is None:
        with _registry_lock:
            found = _registry.setdefault(service, CircuitBreaker(service))
    return found
