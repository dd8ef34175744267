"""Fixtures for the cache tests: a private redis-server the test can kill,
freeze and restart (as a CACHES alias of its own, so the service reaches it
through django-redis like production), and a clean slate of the cache's
per-process state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from resilience.cache import service as cache_service_module
from resilience.cache.outage import reset_outages
from resilience.cache.stats import reset_stats
from tests.private_redis import PrivateRedis, free_port, running_redis

PORTS = range(16500, 16600)


def closed_port() -> int:
    """A port in our range that nothing listens on."""
    return free_port(PORTS)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with running_redis(PORTS) as server:
        yield server


def cache_alias(url: str, **options: Any) -> dict[str, Any]:
    """A CACHES entry like "default" (same serializer, timeouts, retry) at another URL."""
    default = settings.CACHES["default"]
    return {**default, "LOCATION": url, "OPTIONS": {**default["OPTIONS"], **options}}


def with_aliases(**aliases: str) -> override_settings:
    """override_settings adding CACHES aliases by name -> URL."""
    return override_settings(CACHES={**settings.CACHES, **{n: cache_alias(u) for n, u in aliases.items()}})


@pytest.fixture
def private_alias(private_redis: PrivateRedis) -> Iterator[str]:
    """The CACHES alias "private", on the test's own redis-server."""
    with with_aliases(private=private_redis.url):
        yield "private"


@pytest.fixture
def closed_alias() -> Iterator[str]:
    """The CACHES alias "closed", on a port nothing listens on."""
    with with_aliases(closed=f"redis://127.0.0.1:{closed_port()}/0"):
        yield "closed"


@pytest.fixture(autouse=True)
def fresh_cache_state() -> Iterator[None]:
    """Pending invalidations and buffered statistics are per process: start each test without them."""
    reset_outages()
    reset_stats()
    cache_service_module._service = None
    yield
    reset_outages()
    reset_stats()
    cache_service_module._service = None
