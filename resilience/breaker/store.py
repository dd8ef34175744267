"""Where breaker state lives: RedisStore (shared by every process, changed
only by the Lua scripts in scripts.py) and LocalStore (this process only,
the same rules in Python, used while Redis cannot be reached).

Both answer with a Reply; a Reply carries the Transition it caused, if any,
so the one process whose script changed the state records and alerts it."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import socket
import threading
import time

import redis

from resilience.breaker.policy import Policy
from resilience.breaker.scripts import ACQUIRE, FORCE, PEEK, RECORD

EVENTS_MAXLEN = 500


@dataclasses.dataclass(frozen=True)
class Transition:
    event_id: str
    from_state: str
    to_state: str
    reason: str
    at_ms: int
    consecutive_failures: int
    window_calls: int
    window_failures: int
    shared: bool


@dataclasses.dataclass(frozen=True)
class Reply:
    allowed: bool
    state: str
    forced: str
    gen: int
    consecutive_failures: int
    opened_at_ms: int
    next_trial_ms: int
    window_calls: int
    window_failures: int
    permits: int
    transition: Transition | None = None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the admin and the `breaker status` command show."""

    service: str
    state: str
    forced: str
    consecutive_failures: int
    opened_at_ms: int
    next_trial_ms: int
    window_calls: int
    window_failures: int
    trial_permits: int
    now_ms: int
    calls: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    transitions: int
    shared: bool

    @property
    def shown_state(self) -> str:
        return f"forced_{self.forced}" if self.forced else self.state

    @property
    def error_rate(self) -> float | None:
        return self.window_failures / self.window_calls if self.window_calls else None


def _s(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _reply(raw: list, shared: bool = True) -> Reply:
    event_id = _s(raw[10])
    transition = None
    if event_id:
        transition = Transition(
            event_id=event_id,
            from_state=_s(raw[11]),
            to_state=_s(raw[12]),
            reason=_s(raw[13]),
            at_ms=int(raw[14]),
            consecutive_failures=int(raw[4]),
            window_calls=int(raw[7]),
            window_failures=int(raw[8]),
            shared=shared,
        )
    return Reply(
        allowed=bool(int(raw[0])),
        state=_s(raw[1]),
        forced=_s(raw[2]),
        gen=int(raw[3]),
        consecutive_failures=int(raw[4]),
        opened_at_ms=int(raw[5]),
        next_trial_ms=int(raw[6]),
        window_calls=int(raw[7]),
        window_failures=int(raw[8]),
        permits=int(raw[9]),
        transition=transition,
    )


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


class RedisStore:
    """One EVALSHA per operation (redis-py's Script falls back to EVAL once
    after a SCRIPT FLUSH or a restart of Redis)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(ACQUIRE)
        self._record = client.register_script(RECORD)
        self._force = client.register_script(FORCE)
        self._peek = client.register_script(PEEK)

    def keys(self, service: str) -> list[str]:
        base = f"{self.prefix}:{{{service}}}"
        return [f"{base}:state", f"{base}:permits", f"{base}:window", f"{base}:events"]

    def acquire(self, policy: Policy, token: str) -> Reply:
        args = [
            policy.forced_state,
            policy.half_open_max_calls,
            _ms(policy.call_timeout_seconds),
            token,
            _ms(policy.window_seconds),
            EVENTS_MAXLEN,
        ]
        return _reply(self._acquire(keys=self.keys(policy.service), args=args))

    def record(self, policy: Policy, outcome: str, gen: int, token: str, kind: str) -> Reply:
        args = [
            policy.forced_state,
            outcome,
            gen,
            token,
            policy.failure_threshold,
            policy.error_rate_threshold,
            _ms(policy.window_seconds),
            policy.minimum_calls,
            _ms(policy.open_seconds),
            policy.open_backoff_multiplier,
            _ms(policy.max_open_seconds),
            policy.half_open_max_calls,
            EVENTS_MAXLEN,
            kind,
        ]
        return _reply(self._record(keys=self.keys(policy.service), args=args))

    def force(self, policy: Policy, action: str, reason: str) -> Reply:
        args = [policy.forced_state, action, reason, _ms(policy.window_seconds), EVENTS_MAXLEN]
        return _reply(self._force(keys=self.keys(policy.service), args=args))

    def snapshot(self, policy: Policy) -> Snapshot:
        raw = self._peek(keys=self.keys(policy.service), args=[policy.forced_state, _ms(policy.window_seconds)])
        values = [int(v) if i not in (1, 2) else _s(v) for i, v in enumerate(raw)]
        return Snapshot(policy.service, values[1], values[2], *values[4:11], *values[11:17], shared=True)

    def events(self, service: str, after: str = "-", count: int = EVENTS_MAXLEN) -> list[Transition]:
        """Transitions in the stream after the given id (exclusive), oldest first."""
        start = f"({after}" if after != "-" else "-"
        entries = self.client.xrange(self.keys(service)[3], min=start, count=count)
        found = []
        for entry_id, fields in entries:
            f = {_s(k): _s(v) for k, v in fields.items()}
            if "to" not in f:
                continue
            found.append(
                Transition(
                    event_id=_s(entry_id),
                    from_state=f["from"],
                    to_state=f["to"],
                    reason=f["reason"],
                    at_ms=int(f["at"]),
                    consecutive_failures=int(f.get("consec", 0)),
                    window_calls=int(f.get("wcalls", 0)),
                    window_failures=int(f.get("wfails", 0)),
                    shared=True,
                )
            )
        return found


@dataclasses.dataclass
class _LocalBreaker:
    state: str = "closed"
    forced: str = ""
    policy_forced: str = ""
    gen: int = 0
    consec: int = 0
    reopen: int = 0
    ho_ok: int = 0
    opened_at: int = 0
    next_trial: int = 0
    buckets: dict[int, list[int]] = dataclasses.field(default_factory=dict)
    permits: dict[str, int] = dataclasses.field(default_factory=dict)
    counters: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(["calls", "ok", "fail", "ignored", "rejected", "transitions"], 0)
    )


class LocalStore:
    """The same state machine as the Lua scripts, for one process, used while
    Redis is unreachable. A lock guards each short state change; it is never
    held while the protected call runs."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, _LocalBreaker] = {}

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    def _get(self, policy: Policy) -> _LocalBreaker:
        b = self._breakers.get(policy.service)
        if b is None:
            b = self._breakers[policy.service] = _LocalBreaker(forced=policy.forced_state)
            b.policy_forced = policy.forced_state
        elif b.policy_forced != policy.forced_state:
            # An operator forced (or reset) this breaker elsewhere: the database copy wins.
            b.forced = b.policy_forced = policy.forced_state
        return b

    def _window(self, b: _LocalBreaker, policy: Policy, now: int) -> tuple[int, int, int]:
        window_ms = _ms(policy.window_seconds)
        bucket_ms = max(window_ms // 10, 1)
        oldest = math.floor((now - window_ms) / bucket_ms)
        for bucket in [k for k in b.buckets if k <= oldest]:
            del b.buckets[bucket]
        return sum(v[0] for v in b.buckets.values()), sum(v[1] for v in b.buckets.values()), bucket_ms

    def _transition(self, b: _LocalBreaker, to: str, reason: str, now: int, forced_to: str = "") -> Transition:
        from_state = f"forced_{b.forced}" if b.forced else b.state
        b.gen += 1
        if not forced_to:
            b.state = to
        b.counters["transitions"] += 1
        wcalls = sum(v[0] for v in b.buckets.values())
        wfails = sum(v[1] for v in b.buckets.values())
        return Transition(
            event_id=f"local:{socket.gethostname()}:{os.getpid()}:{now}:{next(self._ids)}",
            from_state=from_state,
            to_state=forced_to or to,
            reason=reason,
            at_ms=now,
            consecutive_failures=b.consec,
            window_calls=wcalls,
            window_failures=wfails,
            shared=False,
        )

    def _open(self, b: _LocalBreaker, duration_ms: int, reason: str, now: int) -> Transition:
        event = self._transition(b, "open", reason, now)
        b.opened_at, b.next_trial, b.ho_ok = now, now + duration_ms, 0
        b.permits.clear()
        return event

    def _reply(self, b: _LocalBreaker, policy: Policy, allowed: bool, now: int, event: Transition | None) -> Reply:
        wcalls, wfails, _ = self._window(b, policy, now)
        return Reply(
            allowed,
            b.state,
            b.forced,
            b.gen,
            b.consec,
            b.opened_at,
            b.next_trial,
            wcalls,
            wfails,
            len(b.permits),
            event,
        )

    def acquire(self, policy: Policy, token: str) -> Reply:
        now = self.now_ms()
        event = None
        with self._lock:
            b = self._get(policy)
            if b.forced == "open":
                b.counters["rejected"] += 1
                return self._reply(b, policy, False, now, None)
            if b.forced == "closed":
                return self._reply(b, policy, True, now, None)
            if b.state == "open":
                if now < b.next_trial:
                    b.counters["rejected"] += 1
                    return self._reply(b, policy, False, now, None)
                event = self._transition(b, "half_open", "open duration elapsed", now)
                b.ho_ok = 0
                b.permits.clear()
            if b.state == "half_open":
                for stale in [t for t, expiry in b.permits.items() if expiry <= now]:
                    del b.permits[stale]
                if len(b.permits) < policy.half_open_max_calls:
                    b.permits[token] = now + _ms(policy.call_timeout_seconds)
                    return self._reply(b, policy, True, now, event)
                b.counters["rejected"] += 1
                reply = self._reply(b, policy, False, now, event)
                return dataclasses.replace(reply, next_trial_ms=min(b.permits.values()))
            return self._reply(b, policy, True, now, event)

    def record(self, policy: Policy, outcome: str, gen: int, token: str, kind: str) -> Reply:
        now = self.now_ms()
        event = None
        with self._lock:
            b = self._get(policy)
            b.permits.pop(token, None)
            b.counters["calls"] += 1
            b.counters[{"ok": "ok", "fail": "fail"}.get(outcome, "ignored")] += 1
            if outcome not in ("ok", "fail") or b.forced or gen != b.gen:
                return self._reply(b, policy, True, now, None)
            if b.state == "closed":
                wcalls, wfails, bucket_ms = self._window(b, policy, now)
                counts = b.buckets.setdefault(now // bucket_ms, [0, 0])
                counts[0] += 1
                wcalls += 1
                if outcome == "fail":
                    counts[1] += 1
                    wfails += 1
                    b.consec += 1
                    if b.consec >= policy.failure_threshold:
                        event = self._open(
                            b, _ms(policy.open_seconds), f"{b.consec} consecutive failures (last: {kind})", now
                        )
                    elif wcalls >= policy.minimum_calls and wfails * 100 >= policy.error_rate_threshold * wcalls:
                        pct = math.floor(wfails * 100 / wcalls + 0.5)
                        reason = f"error rate {pct}% over {wcalls} calls in {int(policy.window_seconds)} s"
                        event = self._open(b, _ms(policy.open_seconds), reason, now)
                else:
                    b.consec = 0
            elif b.state == "half_open":
                if outcome == "fail":
                    b.reopen += 1
                    duration = min(
                        policy.open_seconds * policy.open_backoff_multiplier**b.reopen, policy.max_open_seconds
                    )
                    duration = max(duration, policy.open_seconds)
                    event = self._open(b, _ms(duration), f"trial call failed ({kind})", now)
                else:
                    b.ho_ok += 1
                    if b.ho_ok >= policy.half_open_max_calls:
                        event = self._transition(b, "closed", f"{b.ho_ok} trial call(s) succeeded", now)
                        b.consec = b.reopen = b.ho_ok = b.opened_at = b.next_trial = 0
                        b.buckets.clear()
                        b.permits.clear()
            return self._reply(b, policy, True, now, event)

    def force(self, policy: Policy, action: str, reason: str) -> Reply:
        now = self.now_ms()
        with self._lock:
            b = self._get(policy)
            if action == "reset":
                event = self._transition(b, "closed", reason, now)
                b.forced = ""
                b.consec = b.reopen = b.ho_ok = b.opened_at = b.next_trial = 0
                b.buckets.clear()
            else:
                event = self._transition(b, b.state, reason, now, forced_to=f"forced_{action}")
                b.forced = action
            b.permits.clear()
            return self._reply(b, policy, True, now, event)

    def snapshot(self, policy: Policy) -> Snapshot:
        now = self.now_ms()
        with self._lock:
            b = self._get(policy)
            wcalls, wfails, _ = self._window(b, policy, now)
            c = b.counters
            return Snapshot(
                policy.service,
                b.state,
                b.forced,
                b.consec,
                b.opened_at,
                b.next_trial,
                wcalls,
                wfails,
                len(b.permits),
                now,
                c["calls"],
                c["ok"],
                c["fail"],
                c["ignored"],
                c["rejected"],
                c["transitions"],
                shared=False,
            )

    def clear(self) -> None:
        with self._lock:
            self._breakers.clear()
