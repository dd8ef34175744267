"""`python manage.py breaker status|open|close|reset [NAME]`: show or control
circuit breakers. `open` forces a breaker open, `close` forces it closed
(disabled), `reset` returns it to a fresh CLOSED and clears any forced state.
Without NAME, status and reset act on every breaker; open and close need one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from resilience.breaker import breaker
from resilience.breaker.policy import ensure_policy_row
from resilience.models import BreakerPolicy
from resilience.providers import SERVICES

ACTIONS = {"open": "open", "close": "closed", "reset": "reset"}
ROW = "{:<12} {:<14} {:>5} {:>16} {:>9} {:>9} {:>7} {:>7} {:>7} {:>6}"


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%H:%M:%S") if ms else "-"


class Command(BaseCommand):
    help = "Show (status) or control (open, close, reset) the circuit breakers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", *ACTIONS])
        parser.add_argument("name", nargs="?", help="A breaker (service) name; default: all of them.")

    def handle(self, *args: Any, action: str, name: str | None, **options: Any) -> None:
        known = sorted(set(SERVICES) | set(BreakerPolicy.objects.values_list("service", flat=True)))
        if name is not None and name not in known:
            raise CommandError(f"No breaker named {name!r}. Known: {', '.join(known)}.")
        names = [name] if name else known
        if action in ("open", "close") and name is None:
            raise CommandError(f"Name the breaker to {action}, e.g. `breaker {action} openai`.")
        if action != "status":
            for service in names:
                ensure_policy_row(service)
                snap = breaker(service).force(ACTIONS[action], actor="manage.py breaker")
                self.stdout.write(self.style.SUCCESS(f"{service}: {snap.shown_state}"))
            return
        columns = ["breaker", "state", "fails", "error rate", "opened", "trial", "calls", "failed", "refused", "moves"]
        self.stdout.write(ROW.format(*columns))
        for service in names:
            circuit = breaker(service)
            circuit.sync_events()
            s = circuit.snapshot()
            rate = f"{s.error_rate:.0%} of {s.window_calls}" if s.error_rate is not None else "-"
            trial = _time(s.next_trial_ms) if s.state == "open" and not s.forced else "-"
            values = [service, s.shown_state, s.consecutive_failures, rate, _time(s.opened_at_ms), trial]
            values += [s.calls, s.failures, s.rejections, s.transitions]
            self.stdout.write(ROW.format(*values) + ("" if s.shared else "  (local: Redis unreachable)"))
