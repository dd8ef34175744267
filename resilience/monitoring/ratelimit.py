"""A per-client fixed-window counter in Redis for the anonymous endpoints that
browsers post to (CSP reports, real-user timing beacons). The client is
resilience.clientip's, so behind the proxy each client has its own count.
Fail-open: with Redis away the endpoint still answers, bounded by its size
limits."""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.http import HttpRequest
from django_redis import get_redis_connection

from resilience.clientip import client_ip

logger = logging.getLogger("calliq.ratelimit")


def client_key(request: HttpRequest) -> str:
    """The client's address, hashed: Redis never holds the IP itself."""
    address = client_ip(request) or "unknown"
    return hashlib.sha256(f"{settings.SECRET_KEY}:{address}".encode()).hexdigest()[:24]


def allow(scope: str, request: HttpRequest, limit: int, window_seconds: int = 60) -> bool:
    """True while this client has made at most `limit` requests to `scope` in
    the current window (one INCR, the expiry set with it)."""
    window = int(time.time() // window_seconds)
    key = f"{settings.CACHE_KEY_PREFIX}:ratelimit:{scope}:{client_key(request)}:{window}"
    try:
        # The throttle alias: cache pressure must not evict the counters.
        client = get_redis_connection(getattr(settings, "THROTTLE_CACHE", "default"))
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window_seconds * 2)
        count, _ = pipe.execute()
    except Exception as exc:  # NotImplementedError without django-redis, RedisError when it is down
        logger.debug("rate limit %s not enforced: %s", scope, exc)
        return True
    return int(count) <= limit
