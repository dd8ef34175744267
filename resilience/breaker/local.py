"""The breaker state machine of one process, in Python: the same rules as the
Lua scripts in scripts.py, used while Redis cannot be reached (see core.py).
Its transitions carry per-process event ids and `shared=False`."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import socket
import threading
import time

from resilience.breaker.policy import Policy
from resilience.breaker.store import Reply, Snapshot, Transition, millis


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
    def nowmillis() -> int:
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
        window_ms = millis(policy.window_seconds)
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
        now = self.nowmillis()
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
                    b.permits[token] = now + millis(policy.call_timeout_seconds)
                    return self._reply(b, policy, True, now, event)
                b.counters["rejected"] += 1
                reply = self._reply(b, policy, False, now, event)
                return dataclasses.replace(reply, next_trial_ms=min(b.permits.values()))
            return self._reply(b, policy, True, now, event)

    def record(self, policy: Policy, outcome: str, gen: int, token: str, kind: str) -> Reply:
        now = self.nowmillis()
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
                            b, millis(policy.open_seconds), f"{b.consec} consecutive failures (last: {kind})", now
                        )
                    elif wcalls >= policy.minimum_calls and wfails * 100 >= policy.error_rate_threshold * wcalls:
                        pct = math.floor(wfails * 100 / wcalls + 0.5)
                        reason = f"error rate {pct}% over {wcalls} calls in {int(policy.window_seconds)} s"
                        event = self._open(b, millis(policy.open_seconds), reason, now)
                else:
                    b.consec = 0
            elif b.state == "half_open":
                if outcome == "fail":
                    b.reopen += 1
                    duration = min(
                        policy.open_seconds * policy.open_backoff_multiplier**b.reopen, policy.max_open_seconds
                    )
                    duration = max(duration, policy.open_seconds)
                    event = self._open(b, millis(duration), f"trial call failed ({kind})", now)
                else:
                    b.ho_ok += 1
                    if b.ho_ok >= policy.half_open_max_calls:
                        event = self._transition(b, "closed", f"{b.ho_ok} trial call(s) succeeded", now)
                        b.consec = b.reopen = b.ho_ok = b.opened_at = b.next_trial = 0
                        b.buckets.clear()
                        b.permits.clear()
            return self._reply(b, policy, True, now, event)

    def force(self, policy: Policy, action: str, reason: str) -> Reply:
        now = self.nowmillis()
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
        now = self.nowmillis()
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
