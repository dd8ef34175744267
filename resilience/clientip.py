"""The client's IP address, as every per-client counter sees it (sign-in
throttle, rate limits): REMOTE_ADDR, or behind our proxy (CALLIQ_BEHIND_PROXY)
the address the proxy appended to X-Forwarded-For, never one the client
could choose."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address a request is counted against (also AXES_CLIENT_IP_CALLABLE)."""
    if getattr(settings, "CALLIQ_BEHIND_PROXY", False):
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        # Our proxy appends the address it saw; anything left of it came from the client.
        if forwarded and forwarded[-1]:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")
