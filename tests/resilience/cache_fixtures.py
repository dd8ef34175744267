"""Fixtures for the cache tests: a private redis-server the test can kill,
freeze and restart, and a clean slate of the cache's per-process state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resilience.cache import service as cache_service_module
from tests.private_redis import PrivateRedis, free_port, running_redis

PORTS = range(16500, 16600)


def closed_port() -> int:
    """A port in our range that nothing listens on."""
    return free_port(PORTS)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with running_redis(PORTS) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_cache_state() -> Iterator[None]:
    """Pending invalidations and buffered statistics are per process: start each test without them."""
    cache_service_module.reset_process_state()
    cache_service_module._service = None
    yield
    cache_service_module.reset_process_state()
    cache_service_module._service = None
