"""Circuit breakers whose state lives in Redis and changes only inside Lua
scripts, so every gunicorn and Celery process shares one breaker per service.
See core.py for the API and scripts.py for the state machine."""

from resilience.breaker.core import (
    CircuitBreaker,
    CircuitOpenError,
    breaker,
    classify,
    reset_process_state,
    use_redis_client,
    using_shared_state,
)
from resilience.breaker.events import AlertContext, register_alert_hook, unregister_alert_hook
from resilience.breaker.policy import Policy, get_policy
from resilience.breaker.store import Snapshot, Transition

SERVICES = ("assemblyai", "openai", "paddle", "resend")

__all__ = [
    "SERVICES",
    "AlertContext",
    "CircuitBreaker",
    "CircuitOpenError",
    "Policy",
    "Snapshot",
    "Transition",
    "breaker",
    "classify",
    "get_policy",
    "register_alert_hook",
    "reset_process_state",
    "unregister_alert_hook",
    "use_redis_client",
    "using_shared_state",
]
