"""The error pages: HTML for people, the API's JSON error shape under /api/."""

from __future__ import annotations

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


def server_error(request: HttpRequest) -> HttpResponse:
    # No template context processors here: the failure may be in one of them.
    if wants_json(request):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "Something broke on our side.", "fields": {}}}, status=500
        )
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
