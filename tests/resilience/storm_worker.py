"""Code run in child processes (multiprocessing, spawn) by the multi-process
breaker tests: each child sets up Django against the test database and the
given Redis, then calls a provider through its breaker."""

from __future__ import annotations

import os
import time
from typing import Any


def setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
    import django

    django.setup()


def child_env(simulator_url: str, **extra: str) -> dict[str, str]:
    """The environment a child needs: the test database (not the dev one), the same Redis, the simulator."""
    from django.db import connection

    db = connection.settings_dict
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "PROVIDER_SIMULATOR_URL": simulator_url,
        "CALLIQ_LOG_LEVEL": "ERROR",
        "DATABASE_CONN_MAX_AGE": "0",
    }
    from django.conf import settings

    env["REDIS_URL"] = settings.REDIS_URL
    env["CACHE_KEY_PREFIX"] = settings.CACHE_KEY_PREFIX
    return env | extra


def _client():
    from resilience.providers.assemblyai import AssemblyAIClient

    return AssemblyAIClient(max_retries=0)


def _one_call(client: Any) -> str:
    from resilience.breaker import CircuitOpenError, breaker
    from resilience.errors import ProviderError

    try:
        breaker("assemblyai").call(client.send, "GET", "/v2/transcript/storm")
    except CircuitOpenError:
        return "refused"
    except ProviderError as exc:
        return "failed" if exc.status != 404 else "ok"
    return "ok"


def storm(env: dict[str, str], barrier: Any, calls: int, results: Any) -> None:
    """Wait for all children, then make `calls` protected calls as fast as possible."""
    setup(env)
    client = _client()
    barrier.wait()
    outcomes = [_one_call(client) for _ in range(calls)]
    results.put(outcomes)


def hammer(env: dict[str, str], barrier: Any, seconds: float, results: Any) -> None:
    """Call for `seconds`, pausing 10 ms after a refusal so eight children don't spin the CPU."""
    setup(env)
    client = _client()
    barrier.wait()
    outcomes: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        outcome = _one_call(client)
        outcomes.append(outcome)
        if outcome == "refused":
            time.sleep(0.01)
    results.put(outcomes)


def through_redis_outage(env: dict[str, str], ready: Any, stop: Any, results: Any) -> None:
    """Call until told to stop, noting for each call whether the shared (Redis)
    breaker was in use and any exception that is not the provider's or the
    breaker's own refusal: those would be the machinery failing the caller."""
    setup(env)
    from resilience.breaker import using_shared_state

    client = _client()
    ready.release()
    calls: list[tuple[bool, str]] = []
    machinery_errors: list[str] = []
    while not stop.is_set():
        try:
            outcome = _one_call(client)
        except Exception as exc:
            machinery_errors.append(repr(exc))
            outcome = "error"
        calls.append((using_shared_state(), outcome))
        time.sleep(0.01)
    results.put({"calls": calls, "errors": machinery_errors})
