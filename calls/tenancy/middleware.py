"""Cross-cutting middleware: Bearer-token sign-in for the JSON API and the
current organization on every signed-in request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from calls.tenancy.http import api_error
from calls.tenancy.models import ApiToken, Membership, hash_token
from calls.tenancy.ratelimit import api_rate_limit_response

ORGANIZATION_SESSION_KEY = "organization_id"
# Personal tokens are credentials for the JSON API and nothing else.
API_PATH_PREFIX = "/api/"
# What a read-scoped token may do.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_api_path(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PATH_PREFIX)


class BearerTokenMiddleware:
    """On /api/ paths, `Authorization: Bearer <token>` signs the request in as
    the token's user, scoped to the token's organization. A malformed, unknown,
    revoked or expired token is a 401 with a JSON error: it never falls back to
    the session. A read-scoped token may only read (GET, HEAD, OPTIONS: else
    403), and every token, and every user over all their tokens and their
    session, is rate limited (429, calls.tenancy.ratelimit).

    Anywhere else the header means nothing: it neither signs in nor turns off
    CSRF, so a stolen token cannot drive a session page (delete calls, mint a
    new token, use the admin)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.api_token = None
        header = request.headers.get("Authorization")
        if header is not None and is_api_path(request):
            refusal = self.authenticate(request, header)
            if refusal is not None:
                return refusal
        elif is_api_path(request) and request.user.is_authenticated:
            # A session on the API spends the same per-user budget as the person's tokens.
            limited = api_rate_limit_response(request, None)
            if limited is not None:
                return limited
        return self.get_response(request)

    def authenticate(self, request: HttpRequest, header: str) -> HttpResponse | None:
        """Sign the request in with the token, or return the refusal."""
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw or " " in raw:
            return api_error(401, "invalid_authorization", "Use the header 'Authorization: Bearer <token>'.")
        token = ApiToken.objects.select_related("user", "organization").filter(token_hash=hash_token(raw)).first()
        if token is None or token.is_revoked or not token.user.is_active:
            return api_error(401, "invalid_token", "This API token is unknown or has been revoked.")
        if token.is_expired:
            return api_error(401, "token_expired", "This API token has expired: create a new one on the tokens page.")
        if request.method not in SAFE_METHODS and not token.allows_writes:
            return api_error(403, "read_only_token", "This API token may only read (GET, HEAD, OPTIONS).")
        limited = api_rate_limit_response(request, token)
        if limited is not None:
            return limited
        # Record use at most once a minute: a hot API client must not turn reads into writes.
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        request.user = token.user
        request.api_token = token
        # A Bearer request on the API carries no cookies a browser could forge, so CSRF does not apply.
        request._dont_enforce_csrf_checks = True
        return None


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
            # The billing account rides along: every page shows the organization's plan.
            memberships = list(
                Membership.objects.for_user(request.user).select_related("organization__billing_account")
            )
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
        # A token issued before the current membership began belongs to an
        # earlier one that ended (its revocation may have been bypassed, e.g.
        # by raw SQL): it gives no access to the organization.
        return next(
            (m for m in memberships if m.organization_id == token.organization_id and token.created_at >= m.created_at),
            None,
        )
    chosen = request.session.get(ORGANIZATION_SESSION_KEY)
    return next((m for m in memberships if m.organization_id == chosen), memberships[0])
