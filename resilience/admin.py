"""Admin for the resilience app: circuit breakers and cache control."""

from resilience.cache import admin as cache_admin  # noqa: F401  (registers the cache control pages)
