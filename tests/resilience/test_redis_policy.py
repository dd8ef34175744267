"""Each Redis keeps what it must (resilience/redis_policy.py): the system check
and the cache admin warn when the cache's Redis would refuse writes once full
(noeviction under a memory cap), or when the breakers' or a Redis broker's may
evict (any policy but noeviction). Real private Redis servers, configured with
CONFIG SET as an operator would."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import override_settings

from resilience.breaker import caches_with_breakers_at
from resilience.redis_policy import check_eviction_policies
from tests.private_redis import PrivateRedis, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def servers():
    """Three private Redis servers: the cache's, the breakers' and the broker's."""
    started = []
    port = None
    for _ in range(3):
        server = PrivateRedis(free_port() if port is None else free_port(range(port + 1, 16500)))
        server.start()
        port = server.port
        started.append(server)
    yield started
    for server in started:
        server.kill()


def configure(server: PrivateRedis, policy: str, maxmemory: str) -> None:
    server.client().config_set("maxmemory-policy", policy)
    server.client().config_set("maxmemory", maxmemory)


def fleet_settings(cache: PrivateRedis, breakers: PrivateRedis, broker: PrivateRedis) -> override_settings:
    caches = caches_with_breakers_at(breakers.url)
    caches["default"] = {**caches["default"], "LOCATION": cache.url}
    return override_settings(CACHES=caches, CELERY_BROKER_URL=broker.url)


def test_misfit_policies_are_warned_about_one_by_one(servers):
    cache, breakers, broker = servers
    configure(cache, "noeviction", "64mb")
    configure(breakers, "allkeys-lru", "64mb")
    configure(broker, "volatile-lru", "0")

    with fleet_settings(cache, breakers, broker):
        warnings = check_eviction_policies()

    assert [w.id for w in warnings] == ["resilience.W101", "resilience.W102", "resilience.W103"]
    assert "allkeys-lru" in warnings[0].msg
    assert "breaker state" in warnings[1].msg
    assert "queued tasks" in warnings[2].msg


def test_the_fleet_split_passes_the_check(servers):
    cache, breakers, broker = servers
    configure(cache, "allkeys-lru", "64mb")
    configure(breakers, "noeviction", "0")
    configure(broker, "noeviction", "0")

    with fleet_settings(cache, breakers, broker):
        assert check_eviction_policies() == []


def test_a_rabbitmq_broker_and_an_unreachable_redis_are_not_warned_about(servers):
    cache, breakers, broker = servers
    configure(cache, "allkeys-lru", "64mb")
    breakers.kill()
    with fleet_settings(cache, breakers, broker), override_settings(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1//"):
        assert check_eviction_policies() == []


def test_the_cache_admin_shows_the_warning(client, staff_user, servers):
    _, breakers, _ = servers
    configure(breakers, "allkeys-lru", "64mb")
    staff_user.user_permissions.add(Permission.objects.get(codename="control_cache"))
    client.force_login(staff_user)
    caches = caches_with_breakers_at(breakers.url)

    with override_settings(CACHES=caches):
        response = client.get("/admin/resilience/cache/")

    assert response.status_code == 200
    assert "The Redis for the breakers has maxmemory-policy allkeys-lru" in response.text
    assert settings.CELERY_BROKER_URL  # the suite's broker (its Redis DB, noeviction) raised nothing
    assert "Celery broker" not in response.text
