"""Breakers reach Redis through their own django-redis alias,
settings.CACHES["breakers"]: its own connection pool with its own short
timeouts (never the cache's pool), switchable with override_settings, and
absent when there is no Redis, leaving each process its local breakers."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from django_redis import get_redis_connection

from resilience.breaker import breaker, caches_with_breakers_at, using_shared_state
from resilience.breaker.connection import ALIAS

pytestmark = pytest.mark.slow


def test_the_breakers_alias_has_a_pool_of_its_own_with_its_own_timeouts():
    breakers = get_redis_connection(ALIAS).connection_pool
    default = get_redis_connection("default").connection_pool
    assert breakers is not default
    assert breakers.connection_kwargs["socket_timeout"] == pytest.approx(0.1)
    assert breakers.connection_kwargs["socket_connect_timeout"] == pytest.approx(0.1)


def test_breaker_state_goes_wherever_the_alias_points_and_moves_with_it(db, fast_policy):
    from tests.private_redis import PrivateRedis, free_port

    first = PrivateRedis(free_port())
    first.start()
    second = PrivateRedis(free_port(range(first.port + 1, 16500)))
    second.start()
    try:
        fast_policy("openai")
        with override_settings(CACHES=caches_with_breakers_at(first.url)):
            assert breaker("openai").call(lambda: "first") == "first"
            assert using_shared_state()
        with override_settings(CACHES=caches_with_breakers_at(second.url)):
            assert breaker("openai").call(lambda: "second") == "second"
            assert breaker("openai").snapshot().calls == 1  # a fresh state: not the first server's
        assert first.client().hget(f"{settings.BREAKER_KEY_PREFIX}:{{openai}}:state", "n_ok") == b"1"
        assert second.client().hget(f"{settings.BREAKER_KEY_PREFIX}:{{openai}}:state", "n_ok") == b"1"
    finally:
        first.kill()
        second.kill()


def test_without_a_breakers_alias_every_process_uses_its_local_breakers(db, fast_policy):
    fast_policy("openai", failure_threshold=1, open_seconds=60)
    caches = {name: config for name, config in settings.CACHES.items() if name != ALIAS}
    with override_settings(CACHES=caches):
        assert breaker("openai").call(lambda: "local") == "local"
        assert not using_shared_state()
        assert breaker("openai").snapshot().shared is False
