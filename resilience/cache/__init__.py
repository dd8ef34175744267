"""CallIQ's cache layer: a tag-versioned, fail-open cache over Redis
(service.py), the @cached_view decorator (decorators.py), invalidation wiring
(wiring.py), warming (warming.py) and admin control (admin.py)."""

from resilience.cache.decorators import cached_view
from resilience.cache.service import PRESETS, CacheService, cache_service, invalidate_tags

__all__ = ["PRESETS", "CacheService", "cache_service", "cached_view", "invalidate_tags"]
