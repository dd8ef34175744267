"""Where the breakers' Redis is and whether it answers: the client comes from
the "breakers" django-redis cache alias (settings.CACHES["breakers"]: its own
pool, short timeouts, no retries), shared by every breaker of the process;
while it fails, the process's LocalStore stands in (see core.py)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis import get_redis_connection

from resilience.breaker.local import LocalStore
from resilience.breaker.policy import forget_policies
from resilience.breaker.store import RedisStore

logger = logging.getLogger("calliq.resilience.breaker")

# The django-redis cache alias whose client the breakers use.
ALIAS = "breakers"


class SharedState:
    """The process's Redis client for breakers and its health, shared by all breakers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: RedisStore | None = None
        self.local = LocalStore()
        self.down_until = 0.0
        self.down = False
        # Bumped whenever Redis fails or the process state is reset: a "closed"
        # answer heard before that is no longer trusted.
        self.epoch = 0
        self.not_redis = False
        self.trust_closed = 1.0

    def redis_store(self) -> RedisStore | None:
        if self.down and time.monotonic() < self.down_until:
            return None
        if self.store is None:
            with self.lock:
                if self.store is None:
                    if ALIAS not in settings.CACHES or self.not_redis:
                        return None  # no Redis configured: degraded mode, local breakers only
                    try:
                        client = get_redis_connection(ALIAS)
                    except NotImplementedError:  # the alias is some other cache backend
                        self.not_redis = True
                        logger.error("breakers: CACHES[%r] is not a django-redis cache; local breakers only", ALIAS)
                        return None
                    # Read once per connection (a settings change resets it): replies are the hot path.
                    self.trust_closed = float(getattr(settings, "BREAKER_TRUST_CLOSED_SECONDS", 1.0))
                    self.store = RedisStore(client, getattr(settings, "BREAKER_KEY_PREFIX", "calliq:breaker"))
        return self.store

    def failed(self, exc: Exception) -> None:
        with self.lock:
            already = self.down
            self.down = True
            self.down_until = time.monotonic() + float(getattr(settings, "BREAKER_REDIS_RETRY_SECONDS", 1.0))
            self.epoch += 1
        if not already:
            logger.warning(
                "breakers: Redis unreachable (%s: %s); this process uses its own in-memory breakers until it answers",
                type(exc).__name__,
                exc,
            )

    def answered(self) -> None:
        if self.down:
            with self.lock:
                was_down, self.down = self.down, False
            if was_down:
                logger.warning("breakers: Redis answers again; back on the shared breaker state")

    def reset(self) -> None:
        # The client's pool belongs to django-redis (one per alias location); only our reference goes.
        with self.lock:
            self.store = None
            self.down = False
            self.down_until = 0.0
            self.epoch += 1
            self.not_redis = False
            self.local.clear()


shared = SharedState()
# Errors that mean "Redis is not answering": fall back, never raise.
REDIS_ERRORS = (redis.RedisError, OSError)


def using_shared_state() -> bool:
    """Whether this process's breakers currently use Redis (False: local fallback)."""
    return shared.redis_store() is not None and not shared.down


def caches_with_breakers_at(url: str, **options: Any) -> dict[str, dict[str, Any]]:
    """settings.CACHES with the breakers alias pointed at another Redis URL,
    keeping its timeouts (and adding django-redis OPTIONS), for tests and
    benchmarks: `override_settings(CACHES=caches_with_breakers_at(url))`.
    Changing CACHES resets the breakers' connection (see _settings_changed)."""
    configured = settings.CACHES.get(ALIAS, {})
    query = urlsplit(configured.get("LOCATION", "")).query
    alias = {
        "BACKEND": "django_redis.cache.RedisCache",
        **configured,
        "LOCATION": urlsplit(url)._replace(query=query).geturl(),
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", **configured.get("OPTIONS", {}), **options},
    }
    return {**settings.CACHES, ALIAS: alias}


def reset_process_state() -> None:
    """Forget this process's Redis connection, local breakers and cached policies."""
    shared.reset()
    forget_policies()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("BREAKER_") or setting in ("REDIS_URL", "CACHES"):
        reset_process_state()
