"""View decorators shared by the apps."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from calls.tenancy.http import api_error


def organization_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sign-in plus a current organization. Signed-out people go to the sign-in
    page; a signed-in user who belongs to no organization is told so (403)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.organization is None:
            return render(request, "no_organization.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def api_organization_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The JSON API's guard: a session or Bearer token, and an organization; errors in the API's shape."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return api_error(401, "not_authenticated", "Sign in or send 'Authorization: Bearer <token>'.")
        if request.organization is None:
            return api_error(403, "no_organization", "This account belongs to no organization.")
        return view(request, *args, **kwargs)

    return wrapper
