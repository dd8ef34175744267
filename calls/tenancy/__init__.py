"""Tenancy: organizations, memberships, API tokens, the middleware that sets
the current organization, and the typed request views rely on. Lives below
every app that uses it (calls, analytics); imports nothing from them."""
