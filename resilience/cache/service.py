"""The cache service: tag-versioned entries in Redis, stampede protection,
fail-open behaviour and statistics.

Why our own layer over Redis rather than Django's cache API alone: tag
versions must be read in the same round trip as the entry (one MGET), locks
need SET NX PX and a compare-and-delete script, and a dead Redis must cost
milliseconds without redis-py's default retries with backoff.
It uses the same Redis (settings.REDIS_URL) and key prefix as django-redis,
through a connection pool of its own with short timeouts and one retry (for
pooled connections broken by a Redis restart).

Redis layout, all under "<CACHE_KEY_PREFIX>:cache:" (our namespace):
    e:<KEY_VERSION>:<namespace>:<key>   entries (pickled Entry, TTL = ttl + grace)
    l:<entry key>                       computation locks (PX lock_timeout)
    t:<tag>                             tag versions (integers, TTL refreshed on bump)
    s:ns:<namespace> / s:view:<name>    statistics hashes; s:views is the set of view names

A tag's version is seeded from Redis TIME when it is first bumped or read, so a
version that expired or was lost never comes back to a value an old entry
carries. The special tag "__epoch__" is part of every entry: bumping it makes
everything cached before stale (used after an outage and by "flush").
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import pickle
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from redis.backoff import NoBackoff
from redis.retry import Retry

from resilience.monitoring import profiler

logger = logging.getLogger("calliq.resilience.cache")

# Bump when the shape of what we store changes: a deploy then never reads an
# entry written by the previous code. CALLIQ_CACHE["KEY_VERSION"] (env
# CALLIQ_CACHE_KEY_VERSION, e.g. the release) adds to it for deploys that
# change templates.
KEY_VERSION = "1"
EPOCH_TAG = "__epoch__"
MAX_KEY_LENGTH = 200
TAG_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Preset:
    ttl: int
    per_user: bool = False

    @property
    def grace(self) -> int:
        """How long after expiry a stale copy may be served while one process recomputes."""
        return max(10, self.ttl // 2)


PRESETS: dict[str, Preset] = {
    "short": Preset(ttl=60),
    "medium": Preset(ttl=300),
    "long": Preset(ttl=3600),
    # Keyed by organization and principal, and tagged with the user's generation
    # (bumped at sign-in and sign-out).
    "per_user": Preset(ttl=300, per_user=True),
}


def resolve_preset(preset: str | Preset | None, ttl: int | None) -> Preset:
    if isinstance(preset, Preset):
        return preset
    if preset is None:
        return Preset(ttl=ttl if ttl is not None else PRESETS["medium"].ttl)
    if preset not in PRESETS:
        raise ValueError(f"Unknown cache preset {preset!r}; use one of {', '.join(PRESETS)}.")
    chosen = PRESETS[preset]
    return Preset(ttl=ttl, per_user=chosen.per_user) if ttl is not None else chosen


def user_tag(user_id: int) -> str:
    return f"user:{user_id}"


def build_key(*parts: object) -> str:
    """A stable key from parts: readable when short, hashed past MAX_KEY_LENGTH."""
    raw = ":".join(str(p).replace(":", "%3A") for p in parts)
    if len(raw) <= MAX_KEY_LENGTH:
        return raw
    return f"{raw[:80]}~{hashlib.sha256(raw.encode()).hexdigest()}"


@dataclass
class Entry:
    value: Any
    versions: tuple[int, ...]
    tags: tuple[str, ...]
    fresh_until: float
    created_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Result:
    """What get_or_set returns: the value and how it was served (HIT, MISS, STALE or BYPASS)."""

    value: Any
    status: str


# --- Process-wide state: pending invalidations and buffered statistics --------
# Pending invalidations are process-wide (not per service instance) so a
# service rebuilt after a settings change still replays them.
_state_lock = threading.Lock()
_pending_tags: set[str] = set()
_stats_buffer: Counter[tuple[str, str]] = Counter()
_stats_flushed_at = 0.0
STATS_FLUSH_INTERVAL = 1.0
_last_logged: dict[str, float] = {}
LOG_EVERY = 10.0

# INCR each tag; a version that did not exist is seeded from Redis TIME (µs)
# so it can never repeat a value an old entry carries; the TTL is refreshed.
BUMP_SCRIPT = """
local t = redis.call('TIME')
local seed = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('INCR', key)
  if v == 1 then
    v = seed
    redis.call('SET', key, v)
  end
  redis.call('EXPIRE', key, ARGV[1])
  out[i] = v
end
return out
"""
# Read versions, seeding any missing one (same rule as BUMP_SCRIPT).
READ_TAGS_SCRIPT = """
local vals = redis.call('MGET', unpack(KEYS))
local t = nil
for i, v in ipairs(vals) do
  if not v then
    if not t then
      local now = redis.call('TIME')
      t = tonumber(now[1]) * 1000000 + tonumber(now[2])
    end
    redis.call('SET', KEYS[i], t, 'NX', 'EX', ARGV[1])
    vals[i] = redis.call('GET', KEYS[i])
  end
end
return vals
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, "CALLIQ_CACHE", {}).get(name, default)


class CacheService:
    """Fail-open cache over one Redis. Every public method swallows Redis
    errors: reads miss, writes are skipped, invalidations are kept and
    replayed, and the error is counted and logged."""

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str | None = None,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        lock_timeout: float | None = None,
        wait_timeout: float | None = None,
        backoff_after_timeout: float | None = None,
    ) -> None:
        self.url = url if url is not None else settings.REDIS_URL
        self.prefix = f"{prefix if prefix is not None else settings.CACHE_KEY_PREFIX}:cache:"
        self.enabled = bool(self.url) and _setting("ENABLED", True)
        self.lock_timeout = lock_timeout if lock_timeout is not None else _setting("LOCK_TIMEOUT", 10.0)
        self.wait_timeout = wait_timeout if wait_timeout is not None else _setting("WAIT_TIMEOUT", 3.0)
        self.backoff_after_timeout = (
            backoff_after_timeout if backoff_after_timeout is not None else _setting("BACKOFF_AFTER_TIMEOUT", 1.0)
        )
        self.key_version = f"{KEY_VERSION}.{_setting('KEY_VERSION', '0')}"
        self._down_until = 0.0
        self._client: redis.Redis | None = None
        if self.enabled:
            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=socket_timeout if socket_timeout is not None else _setting("SOCKET_TIMEOUT", 0.1),
                socket_connect_timeout=(
                    connect_timeout if connect_timeout is not None else _setting("CONNECT_TIMEOUT", 0.1)
                ),
                # One immediate retry heals a pooled connection that a Redis restart
                # broke; a timeout is not retried (it would double the cost of a dead Redis).
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                health_check_interval=0,
            )
            self._bump = self._client.register_script(BUMP_SCRIPT)
            self._read_tags = self._client.register_script(READ_TAGS_SCRIPT)
            self._release = self._client.register_script(RELEASE_SCRIPT)

    # --- keys -------------------------------------------------------------
    def entry_key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}e:{self.key_version}:{namespace}:{key}"

    def tag_key(self, tag: str) -> str:
        return f"{self.prefix}t:{tag}"

    def _all_tags(self, tags: Iterable[str]) -> tuple[str, ...]:
        return (EPOCH_TAG, *sorted(set(tags)))

    # --- availability -----------------------------------------------------
    def _usable(self) -> redis.Redis | None:
        """The client, or None while Redis is known down or an invalidation is
        still unreplayed (a hit could then be stale, so we don't serve one)."""
        if self._client is None or time.monotonic() < self._down_until:
            return None
        if _pending_tags and not self._replay():
            return None
        return self._client

    def _failed(self, exc: Exception, action: str, namespace: str = "default") -> None:
        if isinstance(exc, redis.TimeoutError):
            # A blackholed Redis would cost a timeout per call: skip it for a moment.
            self._down_until = time.monotonic() + self.backoff_after_timeout
        with _state_lock:
            # Outage epoch: whatever happened while we could not see Redis (an
            # invalidation by a process that died meanwhile, say), everything
            # cached before is treated as stale once we reach Redis again.
            _pending_tags.add(EPOCH_TAG)
        record_stat(namespace, "errors")
        # Every error is counted; the log gets one line per kind of failure every few seconds.
        now = time.monotonic()
        if now - _last_logged.get(action, -LOG_EVERY) >= LOG_EVERY:
            _last_logged[action] = now
            logger.warning("cache %s failed, continuing without cache: %s: %s", action, type(exc).__name__, exc)
        _ensure_replayer(self)

    def _replay(self) -> bool:
        with _state_lock:
            tags = set(_pending_tags)
        if not tags:
            return True
        try:
            # After a failure EPOCH_TAG is among them (see _failed): anything
            # cached while this process could not reach Redis is dropped too.
            self._bump(keys=[self.tag_key(t) for t in sorted(tags)], args=[TAG_TTL_SECONDS])
        except redis.RedisError as exc:
            self._failed(exc, "invalidation")
            return False
        with _state_lock:
            _pending_tags.difference_update(tags)
        if EPOCH_TAG in tags:
            logger.info("cache: Redis reachable again: %d invalidation(s) replayed, epoch bumped", len(tags) - 1)
        return True

    # --- tags -------------------------------------------------------------
    def read_versions(self, tags: Sequence[str]) -> tuple[int, ...] | None:
        client = self._usable()
        if client is None:
            return None
        try:
            return tuple(int(v) for v in self._read_tags(keys=[self.tag_key(t) for t in tags], args=[TAG_TTL_SECONDS]))
        except redis.RedisError as exc:
            self._failed(exc, "tag read")
            return None

    def invalidate_tags(self, *tags: str, on_commit: bool = True) -> None:
        """Bump each tag's version. Inside a transaction the bump waits for the
        commit, so no reader can cache pre-commit data under the new version.
        Never raises: with Redis unreachable the tags are kept and replayed."""
        tags = tuple(t for t in tags if t)
        if not tags:
            return
        if on_commit:
            transaction.on_commit(lambda: self._invalidate_now(tags))
        else:
            self._invalidate_now(tags)

    def _invalidate_now(self, tags: Sequence[str]) -> None:
        with _state_lock:
            _pending_tags.update(tags)
        if self._client is None:
            with _state_lock:
                _pending_tags.difference_update(tags)
            return
        # _replay bumps every pending tag, ours included.
        if time.monotonic() >= self._down_until:
            self._replay()

    # --- entries ----------------------------------------------------------
    @profiler.cache_read  # monitoring: cache time per request
    def _load(self, namespace: str, key: str, tags: tuple[str, ...]) -> tuple[Entry | None, tuple[int, ...]] | None:
        """One round trip (one MGET): the entry and the current versions of its tags."""
        client = self._usable()
        if client is None:
            return None
        tag_keys = [self.tag_key(t) for t in tags]
        try:
            raw, *versions = client.mget([self.entry_key(namespace, key), *tag_keys])
            if any(v is None for v in versions):
                versions = self._read_tags(keys=tag_keys, args=[TAG_TTL_SECONDS])
        except redis.RedisError as exc:
            self._failed(exc, "read", namespace)
            return None
        entry = None
        if raw is not None:
            try:
                entry = pickle.loads(raw)
            except Exception:
                logger.warning("cache: unreadable entry %s:%s dropped", namespace, key)
        return entry, tuple(int(v) for v in versions)

    def _store(
        self, namespace: str, key: str, value: Any, versions: tuple[int, ...], tags: tuple[str, ...], preset: Preset
    ) -> None:
        client = self._usable()
        if client is None:
            return
        entry = Entry(value=value, versions=versions, tags=tags, fresh_until=time.time() + preset.ttl)
        try:
            client.set(
                self.entry_key(namespace, key),
                pickle.dumps(entry, pickle.HIGHEST_PROTOCOL),
                ex=preset.ttl + preset.grace,
            )
        except redis.RedisError as exc:
            self._failed(exc, "write", namespace)

    def get(
        self, key: str, *, namespace: str = "default", tags: Iterable[str] = (), view: str | None = None
    ) -> Any | None:
        """The value if fresh and none of its tags changed, else None."""
        self.flush_stats()
        all_tags = self._all_tags(tags)
        loaded = self._load(namespace, key, all_tags)
        if loaded is None:
            return None
        entry, versions = loaded
        if (
            entry is not None
            and entry.tags == all_tags
            and entry.versions == versions
            and entry.fresh_until > time.time()
        ):
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
        all_tags = self._all_tags(tags)
        if versions is None:
            versions = self.read_versions(all_tags)
            if versions is None:
                return
        self._store(namespace, key, value, versions, all_tags, resolve_preset(preset, ttl))

    def delete(self, key: str, *, namespace: str = "default") -> None:
        client = self._usable()
        if client is None:
            return
        try:
            client.delete(self.entry_key(namespace, key))
        except redis.RedisError as exc:
            self._failed(exc, "delete", namespace)

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
        self.flush_stats()
        chosen = resolve_preset(preset, ttl)
        all_tags = self._all_tags(tags)
        loaded = self._load(namespace, key, all_tags)
        if loaded is None:
            return self._bypass(namespace, view, compute)
        entry, versions = loaded
        now = time.time()
        valid = entry is not None and entry.tags == all_tags and entry.versions == versions
        if valid and entry.fresh_until > now:
            record_stat(namespace, "hits", view=view)
            return Result(entry.value, "HIT")
        stale = entry.value if valid else None  # expired by time only, within its grace

        lock_key = f"{self.prefix}l:{namespace}:{key}"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.005
        while True:
            try:
                acquired = self._client.set(lock_key, token, nx=True, px=int(self.lock_timeout * 1000))
            except redis.RedisError as exc:
                self._failed(exc, "lock", namespace)
                return self._bypass(namespace, view, compute)
            if acquired:
                return self._compute_and_store(
                    namespace, key, compute, versions, all_tags, chosen, cacheable, lock_key, token, view
                )
            if stale is not None:
                record_stat(namespace, "stale", view=view)
                return Result(stale, "STALE")
            if time.monotonic() >= deadline:
                # The holder is slow or gone: compute ourselves rather than wait longer.
                record_stat(namespace, "misses", view=view)
                return Result(compute(), "MISS")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            loaded = self._load(namespace, key, all_tags)
            if loaded is None:
                return self._bypass(namespace, view, compute)
            entry, versions = loaded
            if (
                entry is not None
                and entry.tags == all_tags
                and entry.versions == versions
                and entry.fresh_until > time.time()
            ):
                record_stat(namespace, "hits", view=view)
                return Result(entry.value, "HIT")

    def _bypass(self, namespace: str, view: str | None, compute: Callable[[], Any]) -> Result:
        record_stat(namespace, "bypass", view=view)
        return Result(compute(), "BYPASS")

    def _compute_and_store(
        self,
        namespace: str,
        key: str,
        compute: Callable[[], Any],
        versions: tuple[int, ...],
        tags: tuple[str, ...],
        preset: Preset,
        cacheable: Callable[[Any], bool] | None,
        lock_key: str,
        token: str,
        view: str | None,
    ) -> Result:
        record_stat(namespace, "misses", view=view)
        try:
            value = compute()
            if cacheable is None or cacheable(value):
                # The versions were read before computing: an invalidation that
                # landed meanwhile leaves this entry stale at once.
                self._store(namespace, key, value, versions, tags, preset)
            return Result(value, "MISS")
        finally:
            try:
                self._release(keys=[lock_key], args=[token])
            except redis.RedisError as exc:
                self._failed(exc, "unlock", namespace)

    # --- statistics and maintenance --------------------------------------
    def flush_stats(self, *, force: bool = False) -> None:
        """Write buffered counters in one pipeline (at most once a second unless forced)."""
        global _stats_flushed_at
        now = time.monotonic()
        if not force and now - _stats_flushed_at < STATS_FLUSH_INTERVAL:
            return
        with _state_lock:
            if not _stats_buffer:
                _stats_flushed_at = now
                return
            batch = dict(_stats_buffer)
            _stats_buffer.clear()
            _stats_flushed_at = now
        client = self._usable() if self._client is not None else None
        if client is None:
            with _state_lock:
                _stats_buffer.update(batch)
            return
        try:
            pipe = client.pipeline(transaction=False)
            for (scope, counter), amount in batch.items():
                pipe.hincrby(f"{self.prefix}s:{scope}", counter, amount)
                if scope.startswith("view:"):
                    pipe.sadd(f"{self.prefix}s:views", scope[5:])
            pipe.execute()
        except redis.RedisError as exc:
            with _state_lock:
                _stats_buffer.update(batch)
            self._failed(exc, "statistics")

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        """{"namespaces": {ns: counters}, "views": {name: counters}}; counters
        are hits, misses, stale, errors, bypass and hit_rate (hits / lookups)."""
        self.flush_stats(force=True)
        result: dict[str, dict[str, dict[str, float]]] = {"namespaces": {}, "views": {}}
        client = self._usable()
        if client is None:
            return result
        try:
            names = sorted(n.decode() for n in client.smembers(f"{self.prefix}s:views"))
            ns_keys = sorted(k.decode() for k in client.scan_iter(match=f"{self.prefix}s:ns:*", count=100))
            pipe = client.pipeline(transaction=False)
            for k in ns_keys:
                pipe.hgetall(k)
            for n in names:
                pipe.hgetall(f"{self.prefix}s:view:{n}")
            rows = pipe.execute()
        except redis.RedisError as exc:
            self._failed(exc, "statistics read")
            return result
        for k, row in zip(ns_keys, rows[: len(ns_keys)], strict=True):
            result["namespaces"][k.rsplit(":", 1)[-1]] = _counters(row)
        for n, row in zip(names, rows[len(ns_keys) :], strict=True):
            result["views"][n] = _counters(row)
        return result

    def namespace_info(self, *, max_scan: int = 200_000) -> dict[str, Any]:
        """Key count of our namespace by a bounded SCAN (admin only, never on
        the request path) and Redis memory."""
        client = self._usable()
        if client is None:
            return {"available": False}
        try:
            count = 0
            truncated = False
            for _ in client.scan_iter(match=f"{self.prefix}*", count=1000):
                count += 1
                if count >= max_scan:
                    truncated = True
                    break
            memory = client.info("memory")
            return {
                "available": True,
                "keys": count,
                "truncated": truncated,
                "used_memory_human": memory.get("used_memory_human"),
                "maxmemory_policy": memory.get("maxmemory_policy"),
                "db_keys": client.dbsize(),
            }
        except redis.RedisError as exc:
            self._failed(exc, "info")
            return {"available": False}

    def flush_namespace(self) -> int:
        """Drop everything we cached: bump the epoch (instant, every process
        sees it) then UNLINK our entry keys in batches. Never FLUSHDB."""
        self.invalidate_tags(EPOCH_TAG, on_commit=False)
        client = self._usable()
        if client is None:
            return 0
        removed = 0
        batch: list[bytes] = []
        try:
            for k in client.scan_iter(match=f"{self.prefix}e:*", count=1000):
                batch.append(k)
                if len(batch) >= 1000:
                    removed += client.unlink(*batch)
                    batch = []
            if batch:
                removed += client.unlink(*batch)
        except redis.RedisError as exc:
            self._failed(exc, "flush")
        return removed

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


_replayer: threading.Thread | None = None


def _ensure_replayer(service: CacheService) -> None:
    """A daemon thread that replays pending invalidations until Redis takes
    them, so an idle process (a worker that made the last change) does not
    keep them to itself."""
    global _replayer
    with _state_lock:
        if _replayer is not None and _replayer.is_alive():
            return

        def run() -> None:
            while True:
                time.sleep(0.5)
                with _state_lock:
                    if not _pending_tags:
                        return
                if time.monotonic() >= service._down_until:
                    service._replay()

        _replayer = threading.Thread(target=run, name="cache-invalidation-replay", daemon=True)
        _replayer.start()


def _counters(row: dict[bytes, bytes]) -> dict[str, float]:
    counts = {k.decode(): int(v) for k, v in row.items()}
    for name in ("hits", "misses", "stale", "errors", "bypass"):
        counts.setdefault(name, 0)
    lookups = counts["hits"] + counts["misses"] + counts["stale"]
    counts["hit_rate"] = round((counts["hits"] + counts["stale"]) / lookups, 4) if lookups else 0.0
    return counts


def record_stat(scope: str, counter: str, *, view: str | None = None) -> None:
    """Count an event in the process buffer; it reaches Redis in the next
    pipelined flush (at most a second later)."""
    profiler.cache_outcome(counter)  # monitoring: cache hits per request
    with _state_lock:
        _stats_buffer[(f"ns:{scope}", counter)] += 1
        if view:
            _stats_buffer[(f"view:{view}", counter)] += 1


_service: CacheService | None = None
_service_lock = threading.Lock()


def cache_service() -> CacheService:
    """The process's service for settings.REDIS_URL (rebuilt when settings change in tests)."""
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
    if setting in {"REDIS_URL", "CACHE_KEY_PREFIX", "CALLIQ_CACHE", "CACHES"}:
        with _service_lock:
            if _service is not None:
                _service.close()
            _service = None


def invalidate_tags(*tags: str, on_commit: bool = True) -> None:
    cache_service().invalidate_tags(*tags, on_commit=on_commit)


def reset_process_state() -> None:
    """Forget pending invalidations and buffered statistics (tests use this
    between cases; production never needs it)."""
    global _stats_flushed_at
    with _state_lock:
        _pending_tags.clear()
        _stats_buffer.clear()
        _stats_flushed_at = 0.0
