"""Cross-cutting middleware: Bearer-token sign-in for the JSON API and the
current organization on every signed-in request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from calls.tenancy.http import api_error
from calls.tenancy.models import ApiToken, Membership, hash_token

ORGANIZATION_SESSION_KEY = "organization_id"


class BearerTokenMiddleware:
    """`Authorization: Bearer <token>` signs the request in as the token's user,
    scoped to the token's organization. A malformed, unknown or revoked token is
    a 401 with a JSON error: it never falls back to the session."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.api_token = None
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, raw = header.partition(" ")
            if scheme.lower() != "bearer" or not raw.strip() or " " in raw.strip():
                return api_error(401, "invalid_authorization", "Use the header 'Authorization: Bearer <token>'.")
            token = (
                ApiToken.objects.active()
                .select_related("user", "organization")
                .filter(token_hash=hash_token(raw.strip()))
                .first()
            )
            if token is None or not token.user.is_active:
                return api_error(401, "invalid_token", "This API token is unknown or has been revoked.")
            # Record use at most once a minute: a hot API client must not turn reads into writes.
            now = timezone.now()
            if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
                ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            request.user = token.user
            request.api_token = token
            # A Bearer request carries no cookies a browser could forge, so CSRF does not apply.
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)


class OrganizationMiddleware:
    """Sets `request.memberships` and `request.organization` for signed-in users:
    the token's organization for API tokens, else the one chosen in the session,
    else the first. A user with no membership gets `organization = None`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.memberships = []
        request.organization = None
        request.membership = None
        if request.user.is_authenticated:
            memberships = list(Membership.objects.for_user(request.user))
            request.memberships = memberships
            membership = select_membership(request, memberships)
            if membership is not None:
                request.membership = membership
                request.organization = membership.organization
        return self.get_response(request)


def select_membership(request: HttpRequest, memberships: list[Membership]) -> Membership | None:
    if not memberships:
        return None
    token = getattr(request, "api_token", None)
    if token is not None:
        return next((m for m in memberships if m.organization_id == token.organization_id), None)
    chosen = request.session.get(ORGANIZATION_SESSION_KEY)
    return next((m for m in memberships if m.organization_id == chosen), memberships[0])
