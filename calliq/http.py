"""Typed request classes for views: what the middleware stack guarantees."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails

    from calls.models import ApiToken, Membership, Organization


class AuthedRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
    api_token: ApiToken | None
    memberships: list[Membership]
    organization: Organization | None


class OrgRequest(AuthedRequest):
    organization: Organization
    membership: Membership
