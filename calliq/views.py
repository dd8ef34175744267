"""The error pages: HTML for people, the API's JSON error shape under /api/.

A database that cannot be reached (a restart, a failover, a pooler that cannot
get a server connection) is an outage, not a bug: the 500 handler answers it
with 503, Retry-After and a page that says so."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from calls.tenancy.http import api_error


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return api_error(400, "bad_request", "The request could not be understood.")
    return render(request, "400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return api_error(403, "forbidden", "You do not have access to this resource.")
    return render(request, "403.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return api_error(404, "not_found", "Nothing here: it does not exist or is not yours.")
    return render(request, "404.html", status=404)


# Seconds a client is told to wait while the database is unreachable.
DATABASE_RETRY_AFTER = 5


def database_unavailable() -> bool:
    """True while handling an exception caused (at any depth) by the database being unreachable."""
    exc = sys.exc_info()[1]
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def service_unavailable(request: HttpRequest) -> HttpResponse:
    from django.template import loader

    if wants_json(request):
        response = JsonResponse(
            {"error": {"code": "unavailable", "message": "The database is out of reach; retry shortly.", "fields": {}}},
            status=503,
        )
    else:
        page = loader.get_template("503.html").render({"retry_after": DATABASE_RETRY_AFTER})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its `except` block, so the exception is still at hand.
    if database_unavailable():
        return service_unavailable(request)
    # No template context processors here: the failure may be in one of them.
    if wants_json(request):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "Something broke on our side.", "fields": {}}}, status=500
        )
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
