"""Does each Redis evict what it may, and keep what it must?

Three kinds of data, three needs (docs/scaling.md, "Redis"):

- the cache (CACHES["default"], REDIS_URL) is disposable: under a memory cap
  it should evict (`allkeys-lru`); with `noeviction` and a cap, a full cache
  refuses every write, and on a Redis it shares, so do the breakers and broker;
- breaker state (CACHES["breakers"], BREAKER_REDIS_URL) and a Redis Celery
  broker (CELERY_BROKER_URL) must never lose a key: an evicting policy can drop
  a breaker's state or a queued task, so they want `noeviction`.

eviction_problems() asks each Redis (CONFIG GET, short timeouts) and returns one
sentence per misfit; the system check (resilience.W101-W103) and the cache
admin page show them. A Redis that does not answer, or does not allow CONFIG
(some managed services rename it), is skipped: the readiness probe covers the
first, the operator's own console the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core import checks

TIMEOUT = 0.3


@dataclass(frozen=True)
class PolicyProblem:
    check_id: str
    role: str
    policy: str
    maxmemory: int
    message: str


def _policy(client: redis.Redis) -> tuple[str, int] | None:
    try:
        config = client.config_get("maxmemory*")
    except redis.RedisError:
        return None
    return config.get("maxmemory-policy", ""), int(config.get("maxmemory", 0) or 0)


def _cache_client(alias: str) -> redis.Redis | None:
    location = settings.CACHES.get(alias, {})
    if location.get("BACKEND") != "django_redis.cache.RedisCache":
        return None
    from django_redis import get_redis_connection

    return get_redis_connection(alias)


def _broker_client() -> redis.Redis | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None  # RabbitMQ, or the in-memory broker
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)


def eviction_problems() -> list[PolicyProblem]:
    problems = []
    cache = _cache_client("default")
    found = _policy(cache) if cache is not None else None
    if found and found[0] == "noeviction" and found[1] > 0:
        problems.append(
            PolicyProblem(
                "resilience.W101",
                "cache",
                *found,
                f"The cache's Redis has maxmemory {found[1]} with maxmemory-policy noeviction: once full it "
                "refuses every write (and so does anything sharing it). Use allkeys-lru for the cache.",
            )
        )
    roles: list[tuple[str, str, Any]] = [
        ("resilience.W102", "breakers", _cache_client("breakers")),
        ("resilience.W103", "Celery broker", _broker_client()),
    ]
    for check_id, role, client in roles:
        found = _policy(client) if client is not None else None
        if found and found[0] != "noeviction":
            problems.append(
                PolicyProblem(
                    check_id,
                    role,
                    *found,
                    f"The Redis for the {role} has maxmemory-policy {found[0]}"
                    f"{f' with maxmemory {found[1]}' if found[1] else ''}: it may evict "
                    f"{'breaker state' if role == 'breakers' else 'queued tasks'}. Give it a Redis with "
                    "noeviction (BREAKER_REDIS_URL / CELERY_BROKER_URL), apart from the cache's.",
                )
            )
    return problems


def check_eviction_policies(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [checks.Warning(p.message, id=p.check_id) for p in eviction_problems()]
