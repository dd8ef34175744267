"""Circuit breakers whose state lives in Redis and changes only inside Lua
scripts, so every gunicorn and Celery process shares one breaker per service.
See core.py for the API and scripts.py for the state machine."""

from resilience.breaker.connection import caches_with_breakers_at, reset_process_state, using_shared_state
from resilience.breaker.core import CircuitBreaker, CircuitOpenError, breaker, classify
from resilience.breaker.events import AlertContext, register_alert_hook, unregister_alert_hook
from resilience.breaker.policy import Policy, get_policy
from resilience.breaker.store import Snapshot, Transition

__all__ = [
    "AlertContext",
    "CircuitBreaker",
    "CircuitOpenError",
    "Policy",
    "Snapshot",
    "Transition",
    "breaker",
    "caches_with_breakers_at",
    "classify",
    "get_policy",
    "register_alert_hook",
    "reset_process_state",
    "unregister_alert_hook",
    "using_shared_state",
]
