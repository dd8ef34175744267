"""Probes: /healthz answers while the process does, whatever its
dependencies; /readyz names each dependency and fails with 503 naming the one
that is down. Both anonymous, never cached, nothing secret in the body."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from tests.resilience.cache_fixtures import cache_alias


def uncached(response) -> bool:
    return "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


def test_liveness_is_200_without_asking_anything_else(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert uncached(response)


def test_readiness_names_each_check_and_is_200_when_all_answer(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "redis", "broker"}
    assert body["checks"]["database"]["ok"] is True
    assert uncached(response)


@pytest.fixture
def private_services(private_redis):
    """Redis and the Celery broker both on a private redis-server the test may stop."""
    with override_settings(
        REDIS_URL=private_redis.url,
        CACHES={**settings.CACHES, "default": cache_alias(private_redis.url)},
        CELERY_BROKER_URL=private_redis.url,
        CELERY_TASK_ALWAYS_EAGER=False,
    ):
        yield private_redis


def test_readiness_checks_the_real_broker(client, db, private_services):
    broker = client.get("/readyz").json()["checks"]["broker"]
    assert broker["ok"] is True
    assert broker["detail"] == "redis reachable"


def test_with_redis_stopped_readiness_is_503_naming_it_and_liveness_stays_200(client, db, private_services):
    assert client.get("/readyz").status_code == 200
    private_services.kill()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["redis", "broker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["detail"].startswith("failed: ")
    assert uncached(response)
    assert client.get("/healthz").status_code == 200


def test_a_stalled_redis_fails_readiness_instead_of_hanging_it(client, db, private_services):
    private_services.freeze()
    try:
        response = client.get("/readyz")
    finally:
        private_services.thaw()
    assert response.status_code == 503
    assert "redis" in response.json()["failing"]


def test_the_body_never_shows_credentials_from_the_urls(client, db, private_redis):
    url = f"redis://:PWSECRETQX7@127.0.0.1:{private_redis.port}/0"
    caches = {**settings.CACHES, "default": cache_alias(url)}
    with override_settings(REDIS_URL=url, CACHES=caches, CELERY_BROKER_URL=url, CELERY_TASK_ALWAYS_EAGER=False):
        response = client.get("/readyz")
        private_redis.kill()
        down = client.get("/readyz")
    assert "PWSECRETQX7" not in response.text
    assert "PWSECRETQX7" not in down.text
    assert "127.0.0.1" not in down.text


def test_the_older_monitoring_health_url_is_the_readiness_probe(client, db):
    assert client.get("/monitoring/health").json()["checks"].keys() == {"database", "redis", "broker"}
