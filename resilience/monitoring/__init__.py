"""Monitoring: health checks, and (as they land) profiler, metrics, alerts and the error tracker."""
