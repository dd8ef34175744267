"""What a process does when Redis fails, and how it comes back (issue 14).

The promise: an invalidation is never lost, also across a Redis outage, and a
process never serves a hit that an invalidation it could not see might have
made stale. The rules, per process and per Redis (one `Outage` each):

1. Any failed Redis call marks the process *down* for that Redis and adds
   the outage epoch (EPOCH_TAG, a tag every entry carries) to its pending
   invalidations. While down, reads and writes skip Redis (BYPASS: the value is
   computed, never read from the cache), so a blackholed Redis costs one
   timeout, not one per request.
2. Invalidations always try Redis, down or not: every pending tag (the epoch
   included) goes in the same bump. A write's invalidation therefore reaches
   Redis as soon as Redis answers, and a write that committed while Redis did
   not answer is older than anything computed after Redis answers again.
3. A probe thread asks Redis every PROBE_INTERVAL (50 ms by default) while
   the process is down: a PING, then, once Redis answers, the replay of the
   pending bump (the PING first, because a stalled Redis runs the commands it
   had already received when it resumes: many late PINGs are harmless, many
   late bumps would not be bumping "once"). The
   process serves from the cache again only after that bump succeeded. So a
   process that saw the outage bumps the epoch itself before its first hit
   after recovery, and so once per outage; a healthy Redis's hot path never
   bumps anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from resilience.cache.entries import EPOCH_TAG

logger = logging.getLogger("calliq.resilience.cache")
LOG_EVERY = 10.0


class Outage:
    """Pending invalidations and the down flag of one process for one Redis."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.replaying = threading.Lock()
        self.pending: set[str] = set()
        self.orphans: list[tuple[str, str]] = []  # (lock key, token) to release on recovery
        self._probe: threading.Thread | None = None
        self._last_logged: dict[str, float] = {}

    @property
    def down(self) -> bool:
        """An outage seen and not yet accounted for (its epoch bump has not landed)."""
        return EPOCH_TAG in self.pending

    def add(self, tags: Iterable[str]) -> None:
        """Keep `tags` for the next bump. Once the outage epoch is pending its
        bump invalidates every entry, so other tags add nothing and are
        dropped: a long outage's pending set stays one tag, not one per write.
        Not while a replay is in flight: its bump may have landed before the
        write these tags announce had committed."""
        with self.lock:
            in_flight = self.replaying.locked()
            if EPOCH_TAG in self.pending and not in_flight:
                return
            self.pending.update(tags)
            if EPOCH_TAG in self.pending and not in_flight:
                self.pending = {EPOCH_TAG}

    def snapshot(self) -> set[str]:
        with self.lock:
            return set(self.pending)

    def orphan(self, name: str, token: str) -> None:
        with self.lock:
            self.orphans.append((name, token))
        self.add((EPOCH_TAG,))  # a failure: the caller records it too

    def take_orphans(self) -> list[tuple[str, str]]:
        with self.lock:
            taken, self.orphans = self.orphans, []
        return taken

    def replayed(self, tags: set[str]) -> None:
        with self.lock:
            self.pending.difference_update(tags)
        if EPOCH_TAG in tags:
            logger.info("cache: Redis answers again: %d invalidation(s) replayed, epoch bumped", len(tags) - 1)

    def failed(self, exc: Exception, action: str, replay: Callable[[], bool], probe_interval: float) -> None:
        """Record a failure (rule 1) and make sure a probe is running (rule 3)."""
        self.add((EPOCH_TAG,))
        now = time.monotonic()
        # Every error is counted by the caller; the log gets one line per kind every few seconds.
        if now - self._last_logged.get(action, -LOG_EVERY) >= LOG_EVERY:
            self._last_logged[action] = now
            logger.warning("cache %s failed, continuing without cache: %s: %s", action, type(exc).__name__, exc)
        self._ensure_probe(replay, probe_interval)

    def _ensure_probe(self, replay: Callable[[], bool], interval: float) -> None:
        with self.lock:
            if self._probe is not None and self._probe.is_alive():
                return

            def run() -> None:
                # Daemon: an idle process (a worker that made the last change)
                # must not keep its invalidations to itself, nor block exit.
                while True:
                    time.sleep(interval)
                    with self.lock:
                        # Decided under the lock: a failure recorded after this
                        # sees no probe and starts a new one.
                        if not self.pending:
                            self._probe = None
                            return
                    replay()

            self._probe = threading.Thread(target=run, name=f"cache-probe-{self.name}", daemon=True)
            self._probe.start()

    def reset(self) -> None:
        with self.lock:
            self.pending.clear()
            self.orphans.clear()


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def outage_for(name: str) -> Outage:
    """The process's outage state for one Redis (kept across service rebuilds)."""
    with _outages_lock:
        if name not in _outages:
            _outages[name] = Outage(name)
        return _outages[name]


def reset_outages() -> None:
    """Forget pending invalidations (tests only)."""
    with _outages_lock:
        for outage in _outages.values():
            outage.reset()
