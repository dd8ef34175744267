"""Paddle events as Paddle Billing sends them, signed, for the billing tests."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from django.urls import reverse

from resilience.providers.paddle_webhooks import SIGNATURE_HEADER, sign_paddle_webhook
from resilience.providers.simulator_paddle import PaddleEventRequest, build_event, rfc3339

SECRET = "test-paddle-destination-secret"


def paddle_event(organization_id=None, *, at: datetime | None = None, **fields) -> dict:
    """A subscription event built by the simulator's builder (Paddle's shape)."""
    request = PaddleEventRequest(url="http://127.0.0.1/", organization_id=organization_id, **fields)
    event = build_event(request, now=at or datetime.now(UTC))
    if at is not None:
        event["occurred_at"] = rfc3339(at)
    return event


def post_event(client, event: dict | bytes, *, secret: str = SECRET, timestamp: int | None = None, header=None):
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    signature = sign_paddle_webhook(body, secret, timestamp=timestamp) if header is None else header
    headers = {SIGNATURE_HEADER: signature} if signature else {}
    return client.post(reverse("billing:paddle_webhook"), body, content_type="application/json", headers=headers)


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def now_ts() -> int:
    return int(time.time())
