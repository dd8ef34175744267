"""Breaker policies as plain frozen values, read from the BreakerPolicy model
and cached per process for BREAKER_POLICY_TTL seconds (default 5), so an edit
in the admin reaches every process within seconds without a database read
per call. A database that cannot be read keeps the last known policy."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError

from resilience.breaker_policy import Policy

logger = logging.getLogger("calliq.resilience.breaker")


# The four services and their call timeouts; the data migration creates these
# rows, and a missing row falls back to the same values.
DEFAULT_TIMEOUTS = {"assemblyai": 30.0, "openai": 30.0, "paddle": 10.0, "resend": 5.0}
POLICY_FIELDS = [f.name for f in dataclasses.fields(Policy)]

_cache: dict[str, tuple[float, Policy]] = {}
_lock = threading.Lock()


def default_policy(service: str) -> Policy:
    return Policy(service=service, call_timeout_seconds=DEFAULT_TIMEOUTS.get(service, 30.0))


def _load(service: str) -> Policy:
    from resilience.models import BreakerPolicy

    row = BreakerPolicy.objects.filter(service=service).values(*POLICY_FIELDS).first()
    return Policy(**row) if row else default_policy(service)


def get_policy(service: str) -> Policy:
    now = time.monotonic()
    cached = _cache.get(service)
    if cached and cached[0] > now:
        return cached[1]
    try:
        policy = _load(service)
    except DatabaseError as exc:
        policy = cached[1] if cached else default_policy(service)
        logger.warning("breaker %s: policy unreadable (%s); using the last known one", service, exc)
    with _lock:
        _cache[service] = (now + float(getattr(settings, "BREAKER_POLICY_TTL", 5.0)), policy)
    return policy


def forget_policies(service: str | None = None) -> None:
    """Drop cached policies (this process) so the next call reads the database."""
    with _lock:
        if service is None:
            _cache.clear()
        else:
            _cache.pop(service, None)


def ensure_policy_row(service: str) -> None:
    """Create the service's policy row with the default values if it is missing."""
    from resilience.models import BreakerPolicy

    defaults = dataclasses.asdict(default_policy(service))
    defaults.pop("service")
    BreakerPolicy.objects.get_or_create(service=service, defaults=defaults)
