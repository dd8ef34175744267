"""Where breaker state lives: RedisStore (shared by every process, changed
only by the Lua scripts in scripts.py) and local.LocalStore (this process
only, the same rules in Python, used while Redis cannot be reached).

Both answer with a Reply; a Reply carries the Transition it caused, if any,
so the one process whose script changed the state records and alerts it."""

from __future__ import annotations

import dataclasses

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
    if len(raw) == 1:  # RECORD's hot path: a success in plain CLOSED (see scripts.py)
        return Reply(True, "closed", "", int(raw[0]), 0, 0, 0, 0, 0, 0)
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


def millis(seconds: float) -> int:
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
        self._keys: dict[str, list[str]] = {}
        self._encoded: dict[str, tuple[Policy, list[bytes]]] = {}

    def keys(self, service: str) -> list[str]:
        found = self._keys.get(service)
        if found is None:
            base = f"{self.prefix}:{{{service}}}"
            found = self._keys[service] = [f"{base}:state", f"{base}:permits", f"{base}:window", f"{base}:events"]
        return found

    def acquire(self, policy: Policy, token: str) -> Reply:
        args = [
            policy.forced_state,
            policy.half_open_max_calls,
            millis(policy.call_timeout_seconds),
            token,
            millis(policy.window_seconds),
            EVENTS_MAXLEN,
        ]
        return _reply(self._acquire(keys=self.keys(policy.service), args=args))

    def record(self, policy: Policy, outcome: str, gen: int, token: str, kind: str) -> Reply:
        fixed = self._policy_args(policy)
        args = [fixed[0], outcome, str(gen).encode(), token, *fixed[1:], kind]
        return _reply(self._record(keys=self.keys(policy.service), args=args))

    def _policy_args(self, policy: Policy) -> list[bytes]:
        """RECORD's ARGV that come from the policy, encoded once per policy
        object (a policy is re-read every few seconds): on the hot path,
        redis-py's encoding of a dozen numbers costs as much as the script."""
        found = self._encoded.get(policy.service)
        if found is None or found[0] is not policy:
            values = [
                policy.forced_state,
                policy.failure_threshold,
                policy.error_rate_threshold,
                millis(policy.window_seconds),
                policy.minimum_calls,
                millis(policy.open_seconds),
                policy.open_backoff_multiplier,
                millis(policy.max_open_seconds),
                policy.half_open_max_calls,
                EVENTS_MAXLEN,
            ]
            found = self._encoded[policy.service] = (policy, [str(v).encode() for v in values])
        return found[1]

    def force(self, policy: Policy, action: str, reason: str) -> Reply:
        args = [policy.forced_state, action, reason, millis(policy.window_seconds), EVENTS_MAXLEN]
        return _reply(self._force(keys=self.keys(policy.service), args=args))

    def snapshot(self, policy: Policy) -> Snapshot:
        raw = self._peek(keys=self.keys(policy.service), args=[policy.forced_state, millis(policy.window_seconds)])
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
