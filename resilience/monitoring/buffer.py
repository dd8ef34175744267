"""Each worker's metrics buffer and the thread that flushes it to Redis.

Requests, operations, provider calls and Celery task outcomes only add to
dictionaries in this process (a lock and a few increments); a daemon thread
sends everything every METRICS_FLUSH_SECONDS in one MULTI/EXEC pipeline, and
the process flushes once more at exit (gunicorn's --max-requests recycling
ends a worker through sys.exit, so atexit runs). So no request waits on Redis.

A flush that Redis refused is put back and sent with the next one. A flush
that timed out may or may not have been applied: its transaction also sets a
batch marker key, and the next flush looks for it before resending, so no
count is lost or doubled. Key layout and retention: see resilience.monitoring.store."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from resilience.monitoring import sketch, store

if TYPE_CHECKING:
    from resilience.monitoring.profiler import Operation
    from resilience.tracing import Trace

logger = logging.getLogger("calliq.monitoring")

MAX_BUFFERED_FIELDS = 50_000  # a long Redis outage drops counts rather than memory
SLOW_KEEP_PER_FLUSH = 50
BATCH_MARKER_SECONDS = 600


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


class Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[int, str, str, str]] = Counter()  # minute, route, method, class
        self.latency: Counter[tuple[int, str, str, int]] = Counter()  # minute, kind, name, bucket
        self.totals: Counter[tuple[str, str]] = Counter()  # (field kind, name) → integer (µs or count)
        self.tasks: Counter[tuple[str, str]] = Counter()
        self.slow: list[tuple[str, str, float, dict]] = []  # kind, name, ms, sample
        self.p99: dict[tuple[str, str], float] = {}  # refreshed by the flusher
        self.known_names: dict[str, set[str]] = {}
        self.names_read_at = 0.0
        self.p99_read_at = 0.0
        self.pid = 0
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        self.flush_lock = threading.Lock()
        self.unconfirmed: tuple[str, tuple] | None = None
        self.slow_settings: tuple[dict[str, float], float, float] | None = None

    # --- recording (request path: no I/O) ---------------------------------
    def ensure_flusher(self) -> None:
        pid = os.getpid()
        if self.pid == pid:
            return
        with self.lock:
            if self.pid == pid:
                return
            # A forked child (gunicorn, Celery prefork) inherits no thread: start its own.
            self.pid = pid
            self.thread = threading.Thread(target=self._run, name="calliq-metrics-flush", daemon=True)
            self.thread.start()

    def after_fork_in_child(self) -> None:
        """The parent flushes what it buffered; the child starts empty, with fresh locks
        (one held by the parent's flusher at fork time would never be released here)."""
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.requests, self.latency, self.totals, self.tasks, self.slow = Counter(), Counter(), Counter(), Counter(), []
        self.unconfirmed = None
        self.pid = 0
        self.thread = None

    def slow_threshold_ms(self, kind: str, name: str) -> float:
        thresholds, floor, factor = self.slow_settings or self._read_slow_settings()
        configured = thresholds.get(name)
        if configured is not None:
            return float(configured)
        p99 = self.p99.get((kind, name))
        return floor if p99 is None else max(floor, p99 * factor)

    def _read_slow_settings(self) -> tuple[dict[str, float], float, float]:
        # Read once (settings lookups cost more than the rest of the check); reset on setting_changed.
        self.slow_settings = (
            dict(_setting("CALLIQ_SLOW_THRESHOLDS_MS", {})),
            float(_setting("CALLIQ_SLOW_MIN_MS", 250.0)),
            float(_setting("CALLIQ_SLOW_P99_FACTOR", 1.0)),
        )
        return self.slow_settings

    def add_request(
        self, route: str, method: str, status: int, seconds: float, trace: Trace, sample: Callable[[], dict]
    ) -> bool:
        """Count one request; returns whether it was slow enough to be kept as a sample."""
        self.ensure_flusher()
        ms = seconds * 1000
        minute = int(time.time() // 60)
        bucket = sketch.bucket_of(ms)
        status_class = f"{status // 100}xx"
        slow = ms >= self.slow_threshold_ms("route", route)
        with self.lock:
            self.requests[(minute, route, method, status_class)] += 1
            self.latency[(minute, "route", route, bucket)] += 1
            t = self.totals
            t[("lat_us", route)] += int(seconds * 1e6)
            t[("db_us", route)] += int(trace.db_seconds * 1e6)
            t[("db_queries", route)] += trace.queries
            t[("cache_us", route)] += int(trace.cache_seconds * 1e6)
            t[("cache_reads", route)] += trace.cache_reads
            t[("cache_hits", route)] += trace.cache_hits
            t[("cpu_us", route)] += int(trace.cpu_seconds * 1e6)
            keep = slow and len(self.slow) < SLOW_KEEP_PER_FLUSH
        if keep:
            taken = sample()
            with self.lock:
                self.slow.append(("route", route, ms, taken))
        return slow

    def add_operation(self, op: Operation, trace: Trace | None) -> None:
        self.ensure_flusher()
        ms = op.seconds * 1000
        minute = int(time.time() // 60)
        slow = ms >= self.slow_threshold_ms("op", op.name)
        with self.lock:
            self.latency[(minute, "op", op.name, sketch.bucket_of(ms))] += 1
            self.totals[("op_us", op.name)] += int(op.seconds * 1e6)
            self.totals[("op_count", op.name)] += 1
            if slow and len(self.slow) < SLOW_KEEP_PER_FLUSH:
                sample = {
                    "request_id": trace.request_id if trace else "",
                    "at": time.time(),
                    "ms": round(ms, 2),
                    "marks": [[name, round(at * 1000, 2)] for name, at in op.marks[:20]],
                    "queries": trace.queries if trace else None,
                }
                self.slow.append(("op", op.name, ms, sample))

    def add_provider_call(self, service: str, seconds: float) -> None:
        self.ensure_flusher()
        with self.lock:
            self.totals[("provider_us", service)] += int(seconds * 1e6)
            self.totals[("provider_calls", service)] += 1

    def add_task(self, task: str, outcome: str) -> None:
        self.ensure_flusher()
        with self.lock:
            self.tasks[(task, outcome)] += 1

    # --- flushing (background thread) ------------------------------------------
    def _run(self) -> None:
        while True:
            self.wake.wait(float(_setting("CALLIQ_METRICS_FLUSH_SECONDS", 2.0)))
            self.wake.clear()
            try:
                self.flush()
            except Exception:  # never let the flusher die
                logger.exception("metrics: flush failed")

    def _take(self) -> tuple[Counter, Counter, Counter, Counter, list]:
        with self.lock:
            taken = (self.requests, self.latency, self.totals, self.tasks, self.slow)
            self.requests, self.latency, self.totals, self.tasks, self.slow = (
                Counter(),
                Counter(),
                Counter(),
                Counter(),
                [],
            )
        return taken

    def _put_back(self, taken: tuple[Counter, Counter, Counter, Counter, list]) -> None:
        requests, latency, totals, tasks, _slow = taken
        with self.lock:
            if len(self.latency) + len(latency) > MAX_BUFFERED_FIELDS:
                logger.warning("metrics: Redis unreachable for long; %d buffered counts dropped", len(latency))
                return
            self.requests.update(requests)
            self.latency.update(latency)
            self.totals.update(totals)
            self.tasks.update(tasks)

    def flush(self) -> bool:
        """Send what this process buffered in one transaction; True if sent (or nothing to send)."""
        with self.flush_lock:
            return self._flush()

    def _flush(self) -> bool:
        client = store.client()
        if client is None:
            self._take()
            return False
        if self.unconfirmed is not None and not self._confirm(client):
            return False
        taken = self._take()
        if not any(taken):
            self._heartbeat(client)
            return True
        batch = uuid.uuid4().hex
        try:
            names = self._names(client)
            pipe = client.pipeline(transaction=True)
            store.write(pipe, *taken, cap=names)
            self._worker_rss(pipe)
            # Written in the same transaction: after a timeout, its presence says whether the batch landed.
            pipe.set(store.batch_key(batch), 1, ex=BATCH_MARKER_SECONDS)
            pipe.execute()
        except redis.TimeoutError as exc:
            logger.warning("metrics: flush timed out (%s); checked before the next one", exc)
            self.unconfirmed = (batch, taken)
            return False
        except (redis.RedisError, OSError) as exc:
            logger.warning("metrics: Redis unreachable (%s); kept for the next flush", exc)
            self._put_back(taken)
            return False
        self._refresh_p99(client)
        return True

    def _confirm(self, client: redis.Redis) -> bool:
        """Settle a batch whose transaction timed out: applied (drop it) or not (send it again)."""
        assert self.unconfirmed is not None
        batch, taken = self.unconfirmed
        try:
            landed = client.exists(store.batch_key(batch))
        except (redis.RedisError, OSError):
            return False
        self.unconfirmed = None
        if not landed:
            self._put_back(taken)
        return True

    def _names(self, client: redis.Redis) -> store.NameCap:
        now = time.monotonic()
        if now - self.names_read_at > 30:
            self.known_names = store.known_names(client)
            self.names_read_at = now
        return store.NameCap(self.known_names, int(_setting("CALLIQ_METRICS_MAX_NAMES", 200)))

    def _refresh_p99(self, client: redis.Redis) -> None:
        now = time.monotonic()
        if now - self.p99_read_at < 60:
            return
        self.p99_read_at = now
        with contextlib.suppress(redis.RedisError, OSError):
            self.p99 = store.recent_p99(client)

    def _worker_rss(self, pipe: Any) -> None:
        store.write_worker(pipe, f"{socket.gethostname()}:{os.getpid()}", rss_bytes())

    def _heartbeat(self, client: redis.Redis) -> None:
        try:
            pipe = client.pipeline(transaction=False)
            self._worker_rss(pipe)
            pipe.execute()
        except (redis.RedisError, OSError):
            pass


def rss_bytes() -> int:
    """This process's resident memory (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_buffer = Buffer()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CALLIQ_SLOW_"):
        _buffer.slow_settings = None


os.register_at_fork(after_in_child=_buffer.after_fork_in_child)
add_request = _buffer.add_request
add_operation = _buffer.add_operation
add_provider_call = _buffer.add_provider_call
add_task = _buffer.add_task


def flush() -> bool:
    return _buffer.flush()


@atexit.register
def _flush_at_exit() -> None:
    if _buffer.pid == os.getpid():
        try:
            _buffer.flush()
        except Exception:  # interpreter shutdown: best effort, never a traceback
            logger.warning("metrics: final flush failed", exc_info=True)
