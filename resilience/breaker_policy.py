"""What a breaker policy is: its values and their defaults, defined once.

A leaf of the resilience package: the BreakerPolicy model (resilience/models.py)
takes its field defaults from here and the breakers (resilience/breaker) run
on these frozen values, so neither has to import the other to agree."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Policy:
    service: str
    failure_threshold: int = 5
    error_rate_threshold: int = 50
    window_seconds: float = 60
    minimum_calls: int = 10
    open_seconds: float = 60
    open_backoff_multiplier: float = 1.0
    max_open_seconds: float = 600
    half_open_max_calls: int = 1
    slow_call_seconds: float | None = None
    call_timeout_seconds: float = 30
    count_timeouts: bool = True
    count_connection_errors: bool = True
    count_server_errors: bool = True
    count_rate_limits: bool = True
    forced_state: str = ""

    def counts(self, kind: str) -> bool | None:
        """Whether an error of this kind counts as a failure; None means neutral."""
        flags = {
            "timeout": self.count_timeouts,
            "connection": self.count_connection_errors,
            "server_error": self.count_server_errors,
            "rate_limited": self.count_rate_limits,
        }
        if kind in flags:
            return flags[kind] or None
        if kind == "client_error":
            return None
        return True
