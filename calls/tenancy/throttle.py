"""Sign-in throttling with django-axes, on /accounts/login/ and /admin/login/.

Failures are counted per (username, client IP) in the default cache (Redis),
so every worker and process shares one count. django-axes' own cache handler
does the counting; this module adds what CallIQ needs around it:

- fail-open: with Redis down or stalled, sign-in works (the failure is
  logged); a throttle must never turn a cache outage into a lock-out of
  everyone;
- lockouts are visible and liftable in the admin: the cache handler keeps no
  rows, so on the failure that locks a pair out one AccessAttempt row is
  written (axes' admin shows it as "Locked Out"), and deleting that row in
  the admin clears the pair's counter in Redis;
- the lockout page: our sign-in styling, no inline script or style, 429 with
  Retry-After and the minutes left;
- the client address is resilience.clientip.client_ip: REMOTE_ADDR, or
  behind our proxy (CALLIQ_BEHIND_PROXY) the address the proxy appended to
  X-Forwarded-For, never one the client could choose.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache, get_client_cache_keys, get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.core.cache.backends.base import BaseCache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from resilience.clientip import client_ip

__all__ = ["SignInThrottle", "SignInThrottleBackend", "client_ip", "lockout_response"]

logger = logging.getLogger(__name__)

# What a dead or stalled Redis raises through django-redis.
CACHE_ERRORS = (RedisError, ConnectionInterrupted, OSError)


class SignInThrottleBackend(AxesStandaloneBackend):
    """Axes' backend, except that an authenticate() without a request (the shell,
    a management command) is not a web sign-in and is not throttled. Every
    sign-in page (LoginView, the admin) passes the request."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class SignInThrottle(AxesCacheHandler):
    """AXES_HANDLER: axes' cache handler, failing open, with lockouts in the admin."""

    def __init__(self) -> None:
        # No cache object is kept: caches[...] is per thread and follows settings changes.
        pass

    @property
    def cache(self) -> BaseCache:
        return get_cache()

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        try:
            return super().get_failures(request, credentials)
        except CACHE_ERRORS as exc:
            logger.warning("Sign-in throttle: cache unavailable, not checking failures (fail-open): %s", exc)
            return 0

    def user_login_failed(
        self, sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        try:
            super().user_login_failed(sender, credentials, request, **kwargs)
        except CACHE_ERRORS as exc:
            logger.warning("Sign-in throttle: cache unavailable, failure not counted (fail-open): %s", exc)
            return
        if request is not None and getattr(request, "axes_failures_since_start", None) == get_failure_limit(
            request, credentials
        ):
            record_lockout(request, credentials)

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        try:
            super().user_logged_in(sender, request, user, **kwargs)
        except CACHE_ERRORS as exc:
            logger.warning("Sign-in throttle: cache unavailable, failures not reset: %s", exc)

    def reset_attempts(
        self, *, ip_address: str | None = None, username: str | None = None, ip_or_username: bool = False
    ) -> int:
        try:
            return super().reset_attempts(ip_address=ip_address, username=username, ip_or_username=ip_or_username)
        except CACHE_ERRORS as exc:
            logger.warning("Sign-in throttle: cache unavailable, lockout not cleared: %s", exc)
            return 0

    def post_save_access_attempt(self, instance: AccessAttempt, **kwargs: Any) -> None:
        """The row only mirrors the count in the cache; saving it changes nothing."""

    def post_delete_access_attempt(self, instance: AccessAttempt, **kwargs: Any) -> None:
        """Deleting the lockout's row in the admin unlocks the (username, IP) pair."""
        self.reset_attempts(ip_address=instance.ip_address, username=instance.username)


def record_lockout(request: HttpRequest, credentials: dict | None) -> None:
    """One AccessAttempt row per locked-out (username, IP), for the admin."""
    AccessAttempt.objects.update_or_create(
        username=get_client_username(request, credentials),
        ip_address=request.axes_ip_address,
        user_agent=(request.axes_user_agent or "")[:255],
        defaults={
            # Set on update too: axes' "clean up expired attempts" goes by it.
            "attempt_time": timezone.now(),
            "failures_since_start": request.axes_failures_since_start,
            "path_info": (request.axes_path_info or "")[:255],
            "http_accept": (request.axes_http_accept or "")[:1025],
            "get_data": "",
            "post_data": "",
        },
    )
    logger.warning("Sign-in locked out after %s failures on %s", request.axes_failures_since_start, request.path)


def seconds_left(request: HttpRequest, credentials: dict | None) -> int:
    """How long this (username, IP) stays locked out: the counter's TTL in Redis,
    else (no TTL support, Redis unreachable) the whole cool-off."""
    cool_off = get_cool_off(request)
    full = int(cool_off.total_seconds()) if cool_off else 0
    cache = get_cache()
    ttl_of = getattr(cache, "ttl", None)
    if ttl_of is None:
        return full
    try:
        ttls = [ttl_of(key) for key in get_client_cache_keys(request, credentials)]
    except CACHE_ERRORS:
        return full
    known = [ttl for ttl in ttls if isinstance(ttl, int) and ttl > 0]
    return max(known) if known else full


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the styled lockout page, 429 with Retry-After."""
    seconds = max(1, seconds_left(request, credentials))
    context = {"minutes": math.ceil(seconds / 60), "failure_limit": get_failure_limit(request, credentials)}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response
