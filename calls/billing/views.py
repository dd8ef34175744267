"""Billing pages: Paddle's webhook endpoint and the organization's usage page."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from calls.billing.models import PaddleEvent
from calls.billing.plans import all_plans
from calls.billing.usage import current_usage
from calls.billing.webhooks import InvalidEvent, apply_paddle_event, parse_event
from calls.tenancy.decorators import organization_required
from calls.tenancy.http import OrgRequest
from calls.tenancy.models import Membership
from resilience.providers.paddle_webhooks import SIGNATURE_HEADER, PaddleSignatureError, verify_paddle_signature
from resilience.uploads import content_length

logger = logging.getLogger("calliq.calls.billing")

# Paddle's subscription events are a few kilobytes.
MAX_WEBHOOK_BODY = 256 * 1024


@csrf_exempt  # Paddle cannot send a CSRF token; the signature is the credential.
@require_POST
def paddle_webhook(request: HttpRequest) -> HttpResponse:
    """Anonymous; only a body signed with PADDLE_WEBHOOK_SECRET within the
    tolerance is read. 400 for a bad signature or body (nothing applied), 200
    for an event applied, ignored or already received (so Paddle stops retrying)."""
    # Anonymous, so the upload middleware's default limit applies; Paddle needs far less.
    length = content_length(request)
    if length is None:
        return JsonResponse({"error": "the Content-Length header is not a number"}, status=400)
    if length > MAX_WEBHOOK_BODY:
        return JsonResponse(
            {"error": f"the body must have a Content-Length of at most {MAX_WEBHOOK_BODY} bytes"}, status=413
        )
    if request.content_type != "application/json":
        # Paddle sends JSON. A form body may already have been parsed by a
        # middleware (request.POST), and then its raw bytes are gone: refuse it
        # here with a clear 415 rather than fail on request.body.
        return JsonResponse({"error": "send the event as Content-Type: application/json"}, status=415)
    raw = request.body
    try:
        verify_paddle_signature(
            raw,
            request.headers.get(SIGNATURE_HEADER),
            settings.PROVIDERS["paddle"]["webhook_secret"],
            tolerance_seconds=settings.PADDLE_WEBHOOK_TOLERANCE_SECONDS,
        )
    except PaddleSignatureError as exc:
        logger.warning("Paddle webhook refused from %s: %s", request.META.get("REMOTE_ADDR"), exc)
        return JsonResponse({"error": "invalid signature"}, status=400)
    try:
        event = parse_event(raw)
    except InvalidEvent as exc:
        logger.warning("Paddle webhook refused: %s", exc)
        return JsonResponse({"error": str(exc)}, status=400)
    outcome = apply_paddle_event(event)
    return JsonResponse({"event_id": event.event_id, "outcome": outcome or "duplicate"})


@require_safe
@organization_required
def usage(request: OrgRequest) -> HttpResponse:
    """Every member sees the minutes and the plan; admins also see the subscription's details."""
    is_admin = request.membership.role == Membership.Role.ADMIN
    context = {
        "usage": current_usage(request.organization),
        "plans": all_plans(),
        "is_admin": is_admin,
        "events": PaddleEvent.objects.filter(organization=request.organization)[:10] if is_admin else [],
    }
    return render(request, "billing/usage.html", context)
