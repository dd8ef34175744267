"""Cross-Origin-Resource-Policy on every response, static files included (it
sits above whitenoise). Django's SecurityMiddleware sends
Cross-Origin-Opener-Policy but has no setting for CORP, and no maintained
package covers this one header."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class CrossOriginResourcePolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "CROSS_ORIGIN_RESOURCE_POLICY", "same-origin")
        if policy:
            response.headers.setdefault("Cross-Origin-Resource-Policy", policy)
        return response
