"""CallIQ's cache layer: a tag-versioned, fail-open cache on CACHES["default"]
(django-redis). entries.py (presets, keys, the msgpack entry format),
service.py (entries + tags + locks), lua.py (its scripts), outage.py (what a
process does when Redis fails and comes back), stats.py, maintenance.py (admin SCANs), decorators.py
(@cached_view), warming.py (the warming registry) and admin.py. Apps wire
their own tags, signals and warmables from their AppConfig.ready().

What is guaranteed across a Redis outage (stall, partition, kill + restart):

- A process that saw Redis fail serves no cached value (BYPASS: computed)
  until its own bump of the outage epoch has landed, so it never serves an
  entry older than an invalidation made during the outage, by any process.
  Its invalidations are kept in memory and carried by that same bump.
- An invalidation is tried on Redis at once even while the process is
  down, so every invalidation made after Redis answers again lands before
  the code that made it goes on (truth committed, then bumped, as before).
- A process with pending invalidations probes Redis every PROBE_INTERVAL
  (CALLIQ_CACHE_PROBE_INTERVAL, 50 ms) from a daemon thread and replays them
  (with the epoch) as soon as Redis answers.
- A process that never saw the outage may be served an entry that misses an
  invalidation made during the outage for at most PROBE_INTERVAL + the socket
  timeout (50 + 100 = 150 ms by default) after Redis answers again: by then
  every live process that saw the outage has bumped the epoch. Not covered:
  an invalidation made during the outage by a process that died before Redis
  answered again, when no live process saw the outage (then nothing bumps the
  epoch; entries expire with their TTL).
- The epoch is bumped once per outage per process that saw it (replays are
  serialised and start with a PING, so commands a stalled Redis runs late are
  harmless), never on a healthy Redis's hot path. Computation locks taken or
  left while Redis failed are released when it answers again. tests/resilience/test_cache_outage.py proves this
  with real processes, a real redis-server, SIGSTOP/SIGCONT and SIGKILL.
"""

from resilience.cache.decorators import cached_view
from resilience.cache.entries import PRESETS, user_tag
from resilience.cache.service import CacheService, cache_service, invalidate_tags, invalidate_user

__all__ = ["PRESETS", "CacheService", "cache_service", "cached_view", "invalidate_tags", "invalidate_user", "user_tag"]
