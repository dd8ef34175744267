"""Who may read the metrics: staff (session) or whoever holds the monitoring
token (CALLIQ_MONITORING_TOKEN, sent as `Authorization: Bearer <token>`);
never a user's API token, even a staff user's.

The monitoring token is not a user API token: it signs nobody in and opens
only the metrics routes. MonitoringTokenMiddleware sits before the API-token
middleware; on the metrics routes it compares a Bearer credential with the
monitoring token in constant time and, if it matches, consumes the header so
the API-token middleware never sees it. Any other credential is left to that
middleware (which answers 401 for an unknown token)."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse

TOKEN_ROUTES = ("metrics", "monitoring_api:metrics")


def _token_paths() -> set[str]:
    paths = set()
    for name in TOKEN_ROUTES:
        with contextlib.suppress(NoReverseMatch):
            paths.add(reverse(name))
    return paths


def token_matches(header: str) -> bool:
    expected = getattr(settings, "CALLIQ_MONITORING_TOKEN", "")
    scheme, _, raw = header.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(raw.strip().encode(), expected.encode())


class MonitoringTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.paths: set[str] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.monitoring_token = False  # type: ignore[attr-defined]
        header = request.META.get("HTTP_AUTHORIZATION")
        if header:
            if self.paths is None:
                self.paths = _token_paths()
            if request.path in self.paths and token_matches(header):
                request.monitoring_token = True  # type: ignore[attr-defined]
                del request.META["HTTP_AUTHORIZATION"]
                request.__dict__.pop("headers", None)
        return self.get_response(request)


def may_read_metrics(request: HttpRequest) -> bool:
    if getattr(request, "monitoring_token", False):
        return True
    if getattr(request, "api_token", None) is not None:
        # A user's API token signs its user in on /api/ paths: even a staff
        # user's token is an integration credential, not a staff session.
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)
