"""Monitoring: health checks and probes (health.py, endpoints.py), the error
tracker (errors.py, scrub.py, csp.py), real-user timings (rum.py), their staff
pages (pages.py), and (as they land) profiler, metrics and alerts."""
