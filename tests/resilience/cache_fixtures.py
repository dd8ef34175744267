"""Fixtures for the cache tests: a private redis-server the test can kill,
freeze and restart (as a CACHES alias of its own, so the service reaches it
through django-redis like production), and a clean slate of the cache's
per-process state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from resilience.cache import service as cache_service_module
from resilience.cache.outage import reset_outages
from resilience.cache.stats import reset_stats

PORTS = range(16500, 16600)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 16500-16599 for a private redis-server")


def closed_port() -> int:
    """A port in our range that nothing listens on."""
    return free_port()


class PrivateRedis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server on {self.port} did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: Redis keeps its data but answers nobody (every call times out)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    server.start()
    yield server
    if server.process is not None:
        server.thaw()
        server.kill()


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
