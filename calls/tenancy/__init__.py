"""Tenancy: organizations, memberships, API tokens, the middleware that sets
the current organization, the typed request views rely on, sign-in throttling
(throttle.py) and the API's per-token rate limit (ratelimit.py). Lives below
every app that uses it (calls, analytics); imports nothing from them."""
