"""Fixtures for the breaker, retry, provider and pipeline tests (loaded as a
pytest plugin by tests/conftest.py): a provider simulator on a free loopback
port with the clients pointed at it, short breaker policies, and private
redis-server processes that a test may stop, stall or kill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

from resilience.breaker import reset_process_state
from resilience.breaker.policy import ensure_policy_row, forget_policies
from resilience.models import BreakerPolicy
from resilience.providers.simulator import SimulatorControl, SimulatorServer
from tests.private_redis import PrivateRedis, running_redis

PRIVATE_REDIS_PORTS = range(16400, 16500)


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    """No breaker state, cached policy or Redis connection survives a test."""
    reset_process_state()
    yield
    reset_process_state()


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    server = SimulatorServer("127.0.0.1", 0)  # with a random control secret of its own
    server.start()
    providers = {name: dict(config) for name, config in settings.PROVIDERS.items()}
    providers["assemblyai"]["base_url"] = f"{server.url}/assemblyai"
    providers["openai"]["base_url"] = f"{server.url}/openai/v1"
    providers["paddle"]["base_url"] = f"{server.url}/paddle"
    providers["resend"]["base_url"] = f"{server.url}/resend"
    with override_settings(
        PROVIDERS=providers, PROVIDER_SIMULATOR_URL=server.url, PROVIDER_SIMULATOR_SECRET=server.secret
    ):
        yield server
    server.stop()


@pytest.fixture
def sim(simulator: SimulatorServer) -> Iterator[SimulatorControl]:
    control = SimulatorControl(simulator.url, simulator.secret)
    yield control
    control.close()


def set_policy(service: str, **fields: object) -> BreakerPolicy:
    """Save a policy (as the admin would) and make this process read it now."""
    ensure_policy_row(service)
    BreakerPolicy.objects.filter(service=service).update(**fields)
    forget_policies(service)
    return BreakerPolicy.objects.get(service=service)


@pytest.fixture
def fast_policy(db):
    """Short open durations and call timeouts, so recovery happens within a test."""

    def apply(service: str, **fields: object) -> BreakerPolicy:
        defaults = {"open_seconds": 0.5, "call_timeout_seconds": 2.0, "window_seconds": 60, "minimum_calls": 10}
        return set_policy(service, **(defaults | fields))

    return apply


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with running_redis(PRIVATE_REDIS_PORTS) as server:
        yield server
