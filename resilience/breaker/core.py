"""The circuit breaker API: `breaker("openai").call(fn, *args, fallback=...)`,
`@breaker("openai")` as a decorator, and `with breaker("openai").guard():`.

State is shared through Redis (store.RedisStore); while Redis cannot be reached
(refused, or stalled past BREAKER_REDIS_TIMEOUT, default 0.1 s) each process
uses its own LocalStore with the same rules, says so in the log, skips Redis
for BREAKER_REDIS_RETRY_SECONDS (default 1 s) so a stalled Redis costs one
timeout rather than one per call, then tries Redis again and goes back to the
shared state when it answers. The machinery never raises into the caller:
the only exceptions a caller sees are its own function's and CircuitOpenError.

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
import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.backoff import NoBackoff
from redis.retry import Retry

from resilience.breaker import events
from resilience.breaker.policy import Policy, ensure_policy_row, forget_policies, get_policy
from resilience.breaker.store import LocalStore, RedisStore, Reply, Snapshot
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


class _Shared:
    """The process's Redis connection for breakers and its health, shared by all breakers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: RedisStore | None = None
        self.local = LocalStore()
        self.down_until = 0.0
        self.down = False

    def redis_store(self) -> RedisStore | None:
        if self.down and time.monotonic() < self.down_until:
            return None
        if self.store is None:
            with self.lock:
                if self.store is None:
                    url = getattr(settings, "BREAKER_REDIS_URL", None) or settings.REDIS_URL
                    if not url:
                        return None
                    timeout = float(getattr(settings, "BREAKER_REDIS_TIMEOUT", 0.1))
                    client = redis.Redis.from_url(
                        url,
                        socket_timeout=timeout,
                        socket_connect_timeout=timeout,
                        retry=Retry(NoBackoff(), 0),
                        health_check_interval=0,
                    )
                    self.store = RedisStore(client, getattr(settings, "BREAKER_KEY_PREFIX", "calliq:breaker"))
        return self.store

    def failed(self, exc: Exception) -> None:
        with self.lock:
            already = self.down
            self.down = True
            self.down_until = time.monotonic() + float(getattr(settings, "BREAKER_REDIS_RETRY_SECONDS", 1.0))
        if not already:
            logger.warning(
                "breakers: Redis unreachable (%s: %s); this process uses its own in-memory breakers until it answers",
                type(exc).__name__,
                exc,
            )

    def answered(self) -> None:
        if self.down:
            with self.lock:
                was_down, self.down = self.down, False
            if was_down:
                logger.warning("breakers: Redis answers again; back on the shared breaker state")

    def use_client(self, client: redis.Redis | None) -> None:
        """Point breakers at another Redis client (benchmarks, tests); None rebuilds from settings."""
        with self.lock:
            self.store = (
                RedisStore(client, getattr(settings, "BREAKER_KEY_PREFIX", "calliq:breaker")) if client else None
            )
            self.down = False
            self.down_until = 0.0

    def reset(self) -> None:
        with self.lock:
            if self.store is not None:
                self.store.client.close()
            self.store = None
            self.down = False
            self.down_until = 0.0
            self.local.clear()


_shared = _Shared()
# Errors that mean "Redis is not answering": fall back, never raise.
REDIS_ERRORS = (redis.RedisError, OSError)


def _when(ms: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC) if ms else None


class Ticket:
    """Permission to make one call: where it was granted, under which generation."""

    __slots__ = ("gen", "local", "policy", "token")

    def __init__(self, policy: Policy, gen: int, token: str, local: bool) -> None:
        self.policy, self.gen, self.token, self.local = policy, gen, token, local


class CircuitBreaker:
    def __init__(self, service: str) -> None:
        self.service = service
        self._last = threading.local()

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.service}>"

    @property
    def policy(self) -> Policy:
        return get_policy(self.service)

    # -- the three operations, each never raising machinery errors -----------
    def _run(self, operation: Callable[[Any], Reply]) -> tuple[Reply, bool]:
        store = _shared.redis_store()
        if store is not None:
            try:
                reply = operation(store)
            except REDIS_ERRORS as exc:
                _shared.failed(exc)
            else:
                _shared.answered()
                return reply, False
        return operation(_shared.local), True

    def _after(self, reply: Reply) -> None:
        self._last.state = reply.state
        self._last.forced = reply.forced
        if reply.transition is not None:
            events.on_transition(self.service, reply.transition, reply.next_trial_ms)

    def acquire(self) -> Ticket:
        """Ask permission for one call; raises CircuitOpenError if refused."""
        policy = self.policy
        token = uuid.uuid4().hex
        reply, local = self._run(lambda store: store.acquire(policy, token))
        self._after(reply)
        if not reply.allowed:
            state = f"forced_{reply.forced}" if reply.forced else reply.state
            raise CircuitOpenError(self.service, state, None if reply.forced else _when(reply.next_trial_ms))
        return Ticket(policy, reply.gen, token, local)

    def record(self, ticket: Ticket, outcome: str, kind: str = "") -> None:
        """Report one call's result: "ok", "fail" or "ignored"."""
        policy = ticket.policy

        def operation(store: Any) -> Reply:
            return store.record(policy, outcome, ticket.gen, ticket.token, kind)

        if ticket.local:
            reply = operation(_shared.local)
        else:
            reply, _ = self._run(operation)
        self._after(reply)

    def outcome_of(self, exc: BaseException | None, policy: Policy, seconds: float) -> tuple[str, str]:
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
        reply, local = self._run(lambda store: store.force(policy, action, reason))
        if not local:
            # Keep this process's fallback breaker in step, should Redis go away next.
            _shared.local.force(policy, action, reason)
        self._after(reply)
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        policy = self.policy
        store = _shared.redis_store()
        if store is not None:
            try:
                snap = store.snapshot(policy)
            except REDIS_ERRORS as exc:
                _shared.failed(exc)
            else:
                _shared.answered()
                return snap
        return _shared.local.snapshot(policy)

    def sync_events(self) -> int:
        """Copy transitions from the Redis stream that the database lacks."""
        from resilience.models import BreakerEvent

        store = _shared.redis_store()
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
            _shared.failed(exc)
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


def using_shared_state() -> bool:
    """Whether this process's breakers currently use Redis (False: local fallback)."""
    return _shared.redis_store() is not None and not _shared.down


def use_redis_client(client: redis.Redis | None) -> None:
    _shared.use_client(client)


def reset_process_state() -> None:
    """Forget this process's Redis connection, local breakers and cached policies."""
    _shared.reset()
    forget_policies()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("BREAKER_") or setting == "REDIS_URL":
        reset_process_state()
