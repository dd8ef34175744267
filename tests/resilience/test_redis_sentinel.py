"""A read that times out on a Sentinel-managed connection (a stalled primary)
must not leave its reply for the next command: a real redis-server behind a
real Sentinel, frozen with SIGSTOP mid-read, then thawed."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from calliq import settings as calliq_settings
from resilience.redis_sentinel import DisconnectingSentinelConnection
from tests.private_redis import free_port, running_redis

pytestmark = pytest.mark.slow
SERVICE = "calliq-test-cache"


@pytest.fixture
def primary_and_sentinel(tmp_path):
    with running_redis() as primary:
        port = free_port(range(16600, 16700))
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 60000\n"
        )
        sentinel = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
        try:
            manager = Sentinel([("127.0.0.1", port)], sentinel_kwargs={"socket_timeout": 1})
            deadline = time.monotonic() + 10
            while True:
                try:
                    manager.discover_master(SERVICE)
                    break
                except (redis.RedisError, OSError):
                    assert time.monotonic() < deadline, "sentinel did not answer"
                    time.sleep(0.1)
            yield primary, manager
        finally:
            sentinel.terminate()
            sentinel.wait(10)


def reply_after_a_timed_out_read(primary, manager, connection_class) -> object:
    # One connection in the pool, so the command after the timeout reuses it if it was kept;
    # the cache's retry policy (calliq/settings.py): a timeout is never retried.
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    client = manager.master_for(
        SERVICE, socket_timeout=0.2, connection_class=connection_class, max_connections=1, retry=retry
    )
    client.set("greeting", "hello")
    primary.freeze()
    try:
        with pytest.raises(redis.TimeoutError):
            client.get("greeting")
    finally:
        primary.thaw()
    time.sleep(0.3)  # the thawed server answers the GET into whatever socket is still open
    return client.incr("counter")


def test_a_timed_out_read_disconnects_so_the_next_command_gets_its_own_reply(primary_and_sentinel):
    primary, manager = primary_and_sentinel
    assert reply_after_a_timed_out_read(primary, manager, DisconnectingSentinelConnection) == 1


def test_redis_pys_own_sentinel_connection_would_hand_over_the_stale_reply(primary_and_sentinel):
    # Why the class exists; when redis-py fixes this, the class can go.
    primary, manager = primary_and_sentinel
    assert reply_after_a_timed_out_read(primary, manager, SentinelManagedConnection) == b"hello"


def test_the_cache_uses_it_whenever_sentinels_are_configured(monkeypatch):
    monkeypatch.setattr(calliq_settings, "REDIS_SENTINELS", [("127.0.0.1", 26379)])
    options = calliq_settings.redis_cache_options(connect_timeout=0.1, socket_timeout=0.1)
    assert options["CONNECTION_POOL_KWARGS"]["connection_class"] is DisconnectingSentinelConnection
