"""The cache service: tag-versioned entries in Redis with stampede protection,
fail-open on every Redis error (see resilience/cache/__init__.py for what is
guaranteed across an outage).

It runs on CACHES["default"] (django-redis): the Redis client, its pool,
timeouts and retry policy are django-redis's (django_redis.get_redis_connection),
so Django's cache API and this service share one store. We add what Django's
cache API lacks: tag versions read in the same round trip as the entry (one
MGET), version bumps in one Lua script, and a computation lock (redis-py Lock).

Redis layout, under "<KEY_PREFIX>:cache:" (KEY_PREFIX of the CACHES alias):
    e:<KEY_VERSION>:<namespace>:<key>   entries (msgpack, TTL = ttl + grace)
    l:<namespace>:<key>                 computation locks (redis-py Lock, lock_timeout)
    t:<tag>                             tag versions (integers, TTL refreshed on bump)
    s:...                               statistics (resilience/cache/stats.py)

A tag's version is seeded from Redis TIME (µs) when it is first bumped or
read, so a version that expired or was lost with a restarted Redis never
comes back to a value an old entry carries.
"""

from __future__ import annotations

import atexit
import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from redis.exceptions import LockError

from resilience import tracing
from resilience.cache.entries import (
    KEY_VERSION,
    TAG_TTL_SECONDS,
    Entry,
    Preset,
    all_tags,
    resolve_preset,
    user_tag,
)
from resilience.cache.lua import BUMP_SCRIPT, READ_TAGS_SCRIPT
from resilience.cache.outage import outage_for
from resilience.cache.stats import flush_stats, read_stats, record_stat


@dataclass(frozen=True)
class Result:
    """What get_or_set returns: the value and how it was served (HIT, MISS, STALE or BYPASS)."""

    value: Any
    status: str


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, "CALLIQ_CACHE", {}).get(name, default)


def _redis_for(alias: str) -> redis.Redis | None:
    """django-redis's client for a CACHES alias, or None when it is not a Redis cache."""
    config = settings.CACHES.get(alias, {})
    if "django_redis" not in config.get("BACKEND", ""):
        return None
    from django_redis import get_redis_connection

    return get_redis_connection(alias)


class CacheService:
    """Fail-open cache over one django-redis alias. Every public method
    swallows Redis errors: reads miss, writes are skipped, invalidations are
    kept and replayed, and the error is counted and logged."""

    def __init__(
        self,
        alias: str = "default",
        *,
        lock_timeout: float | None = None,
        wait_timeout: float | None = None,
        probe_interval: float | None = None,
    ) -> None:
        self.alias = alias
        config = settings.CACHES.get(alias, {})
        self.prefix = f"{config.get('KEY_PREFIX', '')}:cache:"
        self.lock_timeout = lock_timeout if lock_timeout is not None else _setting("LOCK_TIMEOUT", 10.0)
        self.wait_timeout = wait_timeout if wait_timeout is not None else _setting("WAIT_TIMEOUT", 3.0)
        self.probe_interval = probe_interval if probe_interval is not None else _setting("PROBE_INTERVAL", 0.05)
        self.key_version = f"{KEY_VERSION}.{_setting('KEY_VERSION', '0')}"
        self.client = _redis_for(alias) if _setting("ENABLED", True) else None
        self.enabled = self.client is not None
        self.outage = outage_for(f"{alias}@{config.get('LOCATION')}")
        if self.client is not None:
            self._bump = self.client.register_script(BUMP_SCRIPT)
            self._read_tags = self.client.register_script(READ_TAGS_SCRIPT)

    # --- keys -------------------------------------------------------------
    def entry_key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}e:{self.key_version}:{namespace}:{key}"

    def tag_key(self, tag: str) -> str:
        return f"{self.prefix}t:{tag}"

    def lock_key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}l:{namespace}:{key}"

    # --- availability (rules in resilience/cache/outage.py) ---------------
    def usable_client(self) -> redis.Redis | None:
        """The client, or None while an outage this process saw is not yet
        accounted for (a hit could then be stale, so none is served)."""
        if self.client is None or self.outage.down:
            return None
        if self.outage.pending and not self.replay():
            return None
        return self.client

    def failed(self, exc: Exception, action: str, namespace: str = "default") -> None:
        record_stat(namespace, "errors")
        self.outage.failed(exc, action, self.replay, self.probe_interval)

    def replay(self) -> bool:
        """Bump every pending tag (the outage epoch included) in one script call."""
        if self.client is None:
            return True
        # One replay at a time per process: two threads that both see Redis
        # answer again must not both bump the epoch.
        with self.outage.replaying:
            return self._replay_pending()

    def _replay_pending(self) -> bool:
        tags = self.outage.snapshot()
        if not tags:
            return True
        try:
            if self.outage.down:
                # A cheap probe first: a stalled Redis runs the commands it had
                # received once it resumes, and a PING is harmless to run late.
                self.client.ping()
            self._bump(keys=[self.tag_key(t) for t in sorted(tags)], args=[TAG_TTL_SECONDS])
        except redis.RedisError as exc:
            self.failed(exc, "invalidation")
            return False
        self.outage.replayed(tags)
        for name, token in self.outage.take_orphans():
            # Locks this process took or tried to take while Redis failed: else
            # every reader of those keys would wait up to wait_timeout after recovery.
            with contextlib.suppress(LockError, redis.RedisError):
                self.client.lock(name).do_release(token.encode())
        return True

    # --- tags -------------------------------------------------------------
    def read_versions(self, tags: Sequence[str]) -> tuple[int, ...] | None:
        client = self.usable_client()
        if client is None:
            return None
        try:
            return tuple(int(v) for v in self._read_tags(keys=[self.tag_key(t) for t in tags], args=[TAG_TTL_SECONDS]))
        except redis.RedisError as exc:
            self.failed(exc, "tag read")
            return None

    def invalidate_tags(self, *tags: str, on_commit: bool = True) -> None:
        """Bump each tag's version. Inside a transaction the bump waits for the
        commit, so no reader can cache pre-commit data under the new version.
        Never raises: with Redis unreachable the tags are kept and replayed."""
        tags = tuple(t for t in tags if t)
        if not tags or self.client is None:
            return
        if on_commit:
            transaction.on_commit(lambda: self._invalidate_now(tags))
        else:
            self._invalidate_now(tags)

    def _invalidate_now(self, tags: Sequence[str]) -> None:
        # Tried even while down (rule 2 in outage.py): the bump carries every
        # pending tag, ours included, and lands the moment Redis answers.
        self.outage.add(tags)
        self.replay()

    # --- entries ----------------------------------------------------------
    @tracing.cache_read  # monitoring: cache time per request
    def _load(self, namespace: str, key: str, tags: tuple[str, ...]) -> tuple[Entry | None, tuple[int, ...]] | None:
        """One round trip (one MGET): the entry and the current versions of its tags."""
        client = self.usable_client()
        if client is None:
            return None
        tag_keys = [self.tag_key(t) for t in tags]
        try:
            raw, *versions = client.mget([self.entry_key(namespace, key), *tag_keys])
            if any(v is None for v in versions):
                versions = self._read_tags(keys=tag_keys, args=[TAG_TTL_SECONDS])
        except redis.RedisError as exc:
            self.failed(exc, "read", namespace)
            return None
        entry = Entry.decode(raw) if raw is not None else None
        return entry, tuple(int(v) for v in versions)

    def _store(
        self, namespace: str, key: str, value: Any, versions: tuple[int, ...], tags: tuple[str, ...], preset: Preset
    ) -> None:
        client = self.usable_client()
        if client is None:
            return
        try:
            data = Entry(value=value, versions=versions, tags=tags, fresh_until=time.time() + preset.ttl).encode()
        except (TypeError, ValueError, OverflowError):
            # Not msgpack-able: served, never cached (and never pickled instead).
            record_stat(namespace, "errors")
            return
        try:
            client.set(self.entry_key(namespace, key), data, ex=preset.ttl + preset.grace)
        except redis.RedisError as exc:
            self.failed(exc, "write", namespace)

    def get(
        self, key: str, *, namespace: str = "default", tags: Iterable[str] = (), view: str | None = None
    ) -> Any | None:
        """The value if fresh and none of its tags changed, else None."""
        flush_stats(self)
        checked = all_tags(tags)
        loaded = self._load(namespace, key, checked)
        if loaded is None:
            return None
        entry, versions = loaded
        if entry is not None and entry.is_fresh(checked, versions):
            record_stat(namespace, "hits", view=view)
            return entry.value
        record_stat(namespace, "misses", view=view)
        return None

    def set(
        self,
        key: str,
        value: Any,
        *,
        namespace: str = "default",
        preset: str | Preset | None = None,
        ttl: int | None = None,
        tags: Iterable[str] = (),
        versions: tuple[int, ...] | None = None,
    ) -> None:
        """Store a value. Pass the versions read before computing it (see
        read_versions) so an invalidation during the computation is not lost;
        without them the current versions are used."""
        checked = all_tags(tags)
        if versions is None:
            versions = self.read_versions(checked)
            if versions is None:
                return
        self._store(namespace, key, value, versions, checked, resolve_preset(preset, ttl))

    def delete(self, key: str, *, namespace: str = "default") -> None:
        client = self.usable_client()
        if client is None:
            return
        try:
            client.delete(self.entry_key(namespace, key))
        except redis.RedisError as exc:
            self.failed(exc, "delete", namespace)

    def get_or_set(
        self,
        key: str,
        compute: Callable[[], Any],
        *,
        namespace: str = "default",
        preset: str | Preset | None = None,
        ttl: int | None = None,
        tags: Iterable[str] = (),
        cacheable: Callable[[Any], bool] | None = None,
        view: str | None = None,
    ) -> Result:
        """The cached value, or compute() once across all processes.

        A cold key is computed by the holder of a Redis lock; the others serve
        a copy that expired less than `grace` ago (STALE) or wait up to
        wait_timeout for the holder, then compute themselves. A value whose
        tags changed is never served. With Redis unreachable, compute() runs
        and the result is BYPASS. `cacheable(value)` can refuse to store a value."""
        flush_stats(self)
        chosen = resolve_preset(preset, ttl)
        checked = all_tags(tags)
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.005
        while True:
            loaded = self._load(namespace, key, checked)
            if loaded is None:
                record_stat(namespace, "bypass", view=view)
                return Result(compute(), "BYPASS")
            entry, versions = loaded
            if entry is not None and entry.is_fresh(checked, versions):
                record_stat(namespace, "hits", view=view)
                return Result(entry.value, "HIT")
            lock = self.client.lock(self.lock_key(namespace, key), timeout=self.lock_timeout, blocking=False)
            token = secrets.token_hex(16)
            try:
                acquired = lock.acquire(token=token)
            except redis.RedisError as exc:
                # A stalled Redis may still take the lock when it resumes: release it then.
                self.outage.orphan(lock.name, token)
                self.failed(exc, "lock", namespace)
                record_stat(namespace, "bypass", view=view)
                return Result(compute(), "BYPASS")
            if acquired:
                record_stat(namespace, "misses", view=view)
                try:
                    value = compute()
                    if cacheable is None or cacheable(value):
                        # The versions were read before computing: an invalidation
                        # that landed meanwhile leaves this entry stale at once.
                        self._store(namespace, key, value, versions, checked, chosen)
                    return Result(value, "MISS")
                finally:
                    try:
                        lock.release()
                    except LockError:
                        pass  # it expired mid-computation; nothing to release
                    except redis.RedisError:
                        self.outage.orphan(lock.name, token)  # released once Redis answers again
            if entry is not None and entry.matches(checked, versions):
                # Expired by time only (within its grace): serve it while the holder recomputes.
                record_stat(namespace, "stale", view=view)
                return Result(entry.value, "STALE")
            if time.monotonic() >= deadline:
                # The holder is slow or gone: compute ourselves rather than wait longer.
                record_stat(namespace, "misses", view=view)
                return Result(compute(), "MISS")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    # --- statistics and maintenance --------------------------------------
    def flush_stats(self, *, force: bool = False) -> None:
        flush_stats(self, force=force)

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        return read_stats(self)

    def namespace_info(self, *, max_scan: int = 200_000) -> dict[str, Any]:
        from resilience.cache.maintenance import namespace_info

        return namespace_info(self, max_scan=max_scan)

    def flush_namespace(self) -> int:
        from resilience.cache.maintenance import flush_namespace

        return flush_namespace(self)


_service: CacheService | None = None
_service_lock = threading.Lock()


def cache_service() -> CacheService:
    """The process's service on CACHES["default"] (rebuilt when settings change in tests)."""
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                _service = CacheService()
                # A short-lived process (a command, a task) must not lose its last second of counters.
                atexit.register(_flush_at_exit, _service)
    return _service


def _flush_at_exit(service: CacheService) -> None:
    with contextlib.suppress(Exception):  # at interpreter exit, never fail loudly
        service.flush_stats(force=True)


@receiver(setting_changed)
def _reset_service(*, setting: str, **kwargs: object) -> None:
    global _service
    if setting in {"CACHES", "CALLIQ_CACHE"}:
        with _service_lock:
            _service = None


def invalidate_tags(*tags: str, on_commit: bool = True) -> None:
    """Bump tags on the default cache (after the commit unless on_commit=False)."""
    cache_service().invalidate_tags(*tags, on_commit=on_commit)


def invalidate_user(user_id: int, *, on_commit: bool = True) -> None:
    """A new generation for one user: every per-user entry of theirs is stale
    (sign-in, sign-out, a change of their rights)."""
    invalidate_tags(user_tag(user_id), on_commit=on_commit)
