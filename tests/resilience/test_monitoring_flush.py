"""The flush under a misbehaving Redis (a private redis-server): a flush that
timed out is settled by its batch marker, so nothing is lost or counted
twice; a refused flush is kept for the next one; requests never wait."""

from __future__ import annotations

import uuid

import pytest

from resilience.monitoring import buffer, store
from resilience.monitoring.profiler import profile


@pytest.fixture
def metrics_on_private_redis(private_redis, settings, db):
    buffer.flush()
    buffer._buffer.names_read_at = 0.0
    settings.CALLIQ_METRICS_PREFIX = f"flush-{uuid.uuid4().hex[:8]}:metrics"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    return private_redis


def runs(conn, name: str) -> int:
    found = store.window(conn, minutes=5, kind="op").get(name)
    return 0 if found is None else found.requests


def test_a_flush_that_timed_out_but_landed_is_not_sent_again(metrics_on_private_redis):
    server = metrics_on_private_redis
    for _ in range(3):
        with profile("flush.test"):
            pass
    server.freeze()  # the transaction is sent, then waits: the client times out, Redis applies it on thaw
    try:
        assert not buffer.flush()
        assert buffer._buffer.unconfirmed is not None  # timed out, not refused
    finally:
        server.thaw()
    with profile("flush.test"):
        pass
    assert buffer.flush()
    assert runs(server.client(), "flush.test") == 4


def test_a_refused_flush_is_kept_and_sent_when_redis_answers(metrics_on_private_redis, settings):
    server = metrics_on_private_redis
    with profile("flush.refused"):
        pass
    server.kill()
    assert not buffer.flush()
    server.start()
    assert buffer.flush()
    assert runs(server.client(), "flush.refused") == 1
