"""Raising webhook events: `emit_event()` is the one way, called by whoever
owns the state change (calls.pipeline for completion and failure,
calls.bulk for outcomes) inside the transaction that makes the change.

The event and one delivery per subscribed, enabled endpoint are stored in
that transaction (an outbox: a rolled-back change sends nothing, a committed
one is never lost), and the deliveries are queued once it commits. If the
queue cannot be reached, the periodic sweep (tasks.send_due_webhooks) sends
them. An organization without endpoints costs one indexed query.

Payloads hold ids and facts, nothing personal: no titles, customer names,
emails or transcript text (a receiver fetches those through the API)."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from calls.tenancy.models import Organization
from calls.webhooks.models import TEST_EVENT, EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.webhooks.signing import new_message_id
from calls.webhooks.tasks import queue_deliveries

# Calls per call.outcome_changed event when many change at once.
OUTCOME_BATCH = 500


def subscribed_endpoints(organization_id: int, event_type: str) -> list[WebhookEndpoint]:
    endpoints = WebhookEndpoint.objects.filter(organization_id=organization_id).enabled()
    return [endpoint for endpoint in endpoints if endpoint.subscribes_to(event_type)]


def emit_event(
    organization: Organization | int,
    event_type: str,
    payload: dict[str, Any],
    *,
    endpoints: list[WebhookEndpoint] | None = None,
) -> WebhookEvent | None:
    """Store `event_type` with `payload` as its `data` for every enabled endpoint
    of the organization subscribed to it (or for `endpoints`, as given), and
    queue the deliveries on commit. Returns the event, or None when no
    endpoint wants it (then nothing is stored)."""
    organization_id = organization if isinstance(organization, int) else organization.pk
    if endpoints is None:
        endpoints = subscribed_endpoints(organization_id, event_type)
    if not endpoints:
        return None
    now = timezone.now()
    body = json.dumps(
        {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": payload},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
    with transaction.atomic():
        event = WebhookEvent.objects.create(
            organization_id=organization_id, msg_id=new_message_id(), type=event_type, body=body, created_at=now
        )
        deliveries = WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now) for endpoint in endpoints]
        )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: queue_deliveries(ids))
    return event


def call_facts(call: Any) -> dict[str, Any]:
    """What every call event says about the call: ids and numbers only."""
    return {
        "call_id": call.pk,
        "organization_id": call.organization_id,
        "rep_id": call.rep_id,
        "status": call.status,
        "outcome": call.outcome or None,
        "direction": call.direction,
        "started_at": call.started_at,
        "duration_seconds": call.duration_seconds,
        "score": call.score,
        "sentiment": call.sentiment,
        "talk_ratio": call.talk_ratio,
    }


def emit_call_completed(call: Any) -> WebhookEvent | None:
    return emit_event(call.organization_id, EventType.CALL_COMPLETED, call_facts(call))


def emit_call_failed(call: Any) -> WebhookEvent | None:
    # The reason is the pipeline's own message (which step, which provider error), not user data.
    return emit_event(call.organization_id, EventType.CALL_FAILED, call_facts(call) | {"reason": call.failure_reason})


def emit_outcome_changes(organization: Organization, calls: QuerySet, outcome: str) -> int:
    """Raise call.outcome_changed for the calls of `calls` whose outcome is about
    to become `outcome`: call it inside the transaction, before the UPDATE
    (afterwards the previous outcomes are gone). Calls already at `outcome`
    are no change. One event per OUTCOME_BATCH calls; returns how many events."""
    endpoints = subscribed_endpoints(organization.pk, EventType.CALL_OUTCOME_CHANGED)
    if not endpoints:
        return 0
    changing = calls.exclude(outcome=outcome).order_by("pk").values_list("pk", "outcome", "rep_id")
    emitted = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal emitted
        emit_event(
            organization.pk,
            EventType.CALL_OUTCOME_CHANGED,
            {"organization_id": organization.pk, "outcome": outcome or None, "calls": batch},
            endpoints=endpoints,
        )
        emitted += 1

    for call_id, previous, rep_id in changing.iterator(chunk_size=2000):
        batch.append({"call_id": call_id, "previous_outcome": previous or None, "rep_id": rep_id})
        if len(batch) == OUTCOME_BATCH:
            flush()
            batch = []
    if batch:
        flush()
    return emitted


def send_test_event(endpoint: WebhookEndpoint) -> bool:
    """Queue a `webhook.test` event to this endpoint alone. False if it is disabled."""
    if not endpoint.is_enabled:
        return False
    emit_event(
        endpoint.organization_id,
        TEST_EVENT,
        {"endpoint_id": endpoint.pk, "message": "A test event from CallIQ."},
        endpoints=[endpoint],
    )
    return True
