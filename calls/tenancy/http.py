"""Typed request classes for views (what the middleware stack guarantees) and the JSON API's error shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest, JsonResponse

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails

    from calls.tenancy.models import ApiToken, Membership, Organization


class AuthedRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
    api_token: ApiToken | None
    memberships: list[Membership]
    organization: Organization | None


class OrgRequest(AuthedRequest):
    organization: Organization
    membership: Membership


def api_error(status: int, code: str, message: str, fields: dict | None = None) -> JsonResponse:
    """The one error shape of the JSON API."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status)
