"""The analytics app's cache wiring, registered from AnalyticsConfig.ready():
the analytics dashboard is warmed for its default ranges. Its entries carry
`org:<id>` (bumped by calls.cache_wiring when calls change)."""

from __future__ import annotations

from resilience.cache.warming import register_warmable


def register_warming() -> None:
    register_warmable("analytics", "analytics:dashboard", queries=({"days": "7"}, {"days": "30"}, {"days": "90"}))
