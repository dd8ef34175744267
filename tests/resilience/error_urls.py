"""Test URLconf for the error tracker: the project's URLs plus views that fail
the way real bugs do (served through the project's real middleware)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from calliq.urls import urlpatterns as project_urlpatterns


def explode(request: HttpRequest) -> HttpResponse:
    password = request.POST.get("password", "")
    raise RuntimeError(
        f"payment failed for {request.user.email} with key api_key={password} and sk_live_9f8e7d6c5b4a39281706"
    )


def explode_deeper(request: HttpRequest, call_id: int) -> HttpResponse:
    return _load(call_id)


def _load(call_id: int) -> HttpResponse:
    raise LookupError(f"call {call_id} has no recording")


urlpatterns = [
    *project_urlpatterns,
    path("boom/", explode, name="boom"),
    path("boom/<int:call_id>/", explode_deeper, name="boom-deeper"),
]

handler500 = "calliq.views.server_error"
