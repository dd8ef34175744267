"""What happens when a breaker changes state: the transition is stored once
(BreakerEvent, unique on the Redis stream id), logged, and an opening calls the
alert hooks. Nothing here raises into the caller: a database that cannot be
written loses nothing, because the Redis stream keeps the event and
`sync_events` copies it later (the admin page and `breaker status` do).

Alert hooks: callables taking an AlertContext, registered with
`register_alert_hook(fn)` or listed as dotted paths in settings.BREAKER_ALERT_HOOKS.
Monitoring plugs in here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from resilience.breaker.store import Transition

logger = logging.getLogger("calliq.resilience.breaker")


@dataclasses.dataclass(frozen=True)
class AlertContext:
    service: str
    transition: Transition
    next_trial_ms: int


AlertHook = Callable[[AlertContext], None]
_hooks: list[AlertHook] = []


def register_alert_hook(hook: AlertHook) -> AlertHook:
    """Call `hook` whenever a breaker opens. Usable as a decorator."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def unregister_alert_hook(hook: AlertHook) -> None:
    if hook in _hooks:
        _hooks.remove(hook)


def alert_hooks() -> list[AlertHook]:
    configured = [import_string(path) for path in getattr(settings, "BREAKER_ALERT_HOOKS", [])]
    return configured + [h for h in _hooks if h not in configured]


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def store_events(service: str, transitions: list[Transition]) -> int:
    """Insert transitions not stored yet (idempotent); returns rows attempted."""
    from resilience.models import BreakerEvent

    rows = [
        BreakerEvent(
            service=service,
            event_id=t.event_id,
            at=_at(t.at_ms),
            from_state=t.from_state,
            to_state=t.to_state,
            reason=t.reason[:300],
            consecutive_failures=t.consecutive_failures,
            window_calls=t.window_calls,
            window_failures=t.window_failures,
            shared=t.shared,
        )
        for t in transitions
    ]
    if not rows:
        return 0
    # A savepoint, so a failed insert never poisons a transaction the caller is in.
    with transaction.atomic():
        BreakerEvent.objects.bulk_create(rows, ignore_conflicts=True)
        BreakerEvent.objects.prune(service, BreakerEvent.RETENTION)
    return len(rows)


def on_transition(service: str, transition: Transition, next_trial_ms: int) -> None:
    """Record, log and alert one transition. Called by the one process whose
    script made the change, so each transition is handled exactly once."""
    where = "shared" if transition.shared else "local (Redis unreachable)"
    if transition.to_state == "open":
        logger.error(
            "breaker %s OPEN (%s breaker): %s; was %s; next trial at %s",
            service,
            where,
            transition.reason,
            transition.from_state,
            _at(next_trial_ms).isoformat() if next_trial_ms else "-",
        )
    else:
        logger.warning(
            "breaker %s %s -> %s (%s breaker): %s",
            service,
            transition.from_state,
            transition.to_state,
            where,
            transition.reason,
        )
    try:
        store_events(service, [transition])
    except Exception as exc:  # the database being down must not break the caller
        logger.warning("breaker %s: transition not stored yet (%s); the Redis stream keeps it", service, exc)
    if transition.to_state == "open":
        context = AlertContext(service, transition, next_trial_ms)
        for hook in alert_hooks():
            try:
                hook(context)
            except Exception:
                logger.exception("breaker %s: alert hook %r failed", service, hook)
