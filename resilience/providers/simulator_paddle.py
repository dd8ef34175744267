"""The provider simulator's Paddle webhooks: build a subscription event in
Paddle Billing's shape, sign it like Paddle, and deliver it to the app.

Driven through the simulator's control endpoint, POST /_sim/paddle-event:

    {"url": "http://127.0.0.1:8000/webhooks/paddle",   # loopback only
     "event_type": "subscription.updated", "organization_id": 1,
     "status": "active", "price_id": "pri_team",
     "subscription_id": "sub_...", "customer_id": "ctm_...",   # optional
     "event_id": "evt_...", "occurred_at": "2026-11-29T18:00:00Z",  # optional
     "scheduled_change": {"action": "cancel", "effective_at": "..."},  # optional
     # knobs of this delivery:
     "delay_ms": 0,              # > 0: answer 202 at once, deliver later in a thread
     "duplicates": 0,            # deliver the same event this many extra times
     "bad_signature": false,     # sign with a wrong secret
     "timestamp_offset_seconds": 0}   # sign with a ts this far from now (stale/future)

Each delivery's answer is kept in the simulator's state (`paddle_webhooks`)."""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from resilience.providers.paddle_webhooks import SIGNATURE_HEADER, SUBSCRIPTION_EVENTS, sign_paddle_webhook

_ID_ALPHABET = string.ascii_lowercase + string.digits


def paddle_id(prefix: str) -> str:
    """A Paddle-style id: prefix_ and 26 lowercase letters and digits."""
    return f"{prefix}_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass
class PaddleEventRequest:
    url: str
    event_type: str = "subscription.updated"
    status: str = "active"
    price_id: str = "pri_team"
    organization_id: int | str | None = None
    subscription_id: str = ""
    customer_id: str = ""
    event_id: str = ""
    occurred_at: str = ""
    scheduled_change: dict | None = None
    delay_ms: float = 0.0
    duplicates: int = 0
    bad_signature: bool = False
    timestamp_offset_seconds: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> PaddleEventRequest:
        if not isinstance(data, dict):
            raise ValueError("send a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        request = cls(**data)
        target = urlsplit(str(request.url))
        if target.scheme not in ("http", "https") or (target.hostname or "") not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("url must be an http(s) URL on a loopback host")
        if request.event_type not in SUBSCRIPTION_EVENTS:
            raise ValueError(f"event_type must be one of {', '.join(sorted(SUBSCRIPTION_EVENTS))}")
        if not 0 <= int(request.duplicates) <= 10 or not 0 <= float(request.delay_ms) <= 60_000:
            raise ValueError("duplicates must be 0-10 and delay_ms 0-60000")
        return request


def build_event(request: PaddleEventRequest, now: datetime | None = None) -> dict:
    """A subscription event as Paddle Billing sends it (the subscription entity in data)."""
    now = now or datetime.now(UTC)
    subscription_id = request.subscription_id or paddle_id("sub")
    customer_id = request.customer_id or paddle_id("ctm")
    starts = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ends = (starts + timedelta(days=32)).replace(day=1)
    live = request.status in ("active", "trialing", "past_due")
    custom_data = {} if request.organization_id is None else {"organization_id": str(request.organization_id)}
    return {
        "event_id": request.event_id or paddle_id("evt"),
        "event_type": request.event_type,
        "occurred_at": request.occurred_at or rfc3339(now),
        "notification_id": paddle_id("ntf"),
        "data": {
            "id": subscription_id,
            "status": request.status,
            "customer_id": customer_id,
            "address_id": paddle_id("add"),
            "business_id": None,
            "currency_code": "USD",
            "created_at": rfc3339(starts),
            "updated_at": rfc3339(now),
            "started_at": rfc3339(starts),
            "first_billed_at": rfc3339(starts),
            "next_billed_at": rfc3339(ends) if live else None,
            "paused_at": rfc3339(now) if request.status == "paused" else None,
            "canceled_at": rfc3339(now) if request.status == "canceled" else None,
            "collection_mode": "automatic",
            "billing_details": None,
            "current_billing_period": {"starts_at": rfc3339(starts), "ends_at": rfc3339(ends)} if live else None,
            "billing_cycle": {"interval": "month", "frequency": 1},
            "scheduled_change": request.scheduled_change,
            "items": [
                {
                    "status": "active",
                    "quantity": 1,
                    "recurring": True,
                    "created_at": rfc3339(starts),
                    "updated_at": rfc3339(now),
                    "previously_billed_at": rfc3339(starts),
                    "next_billed_at": rfc3339(ends) if live else None,
                    "trial_dates": None,
                    "price": {
                        "id": request.price_id,
                        "product_id": "pro_calliq",
                        "description": f"CallIQ ({request.price_id})",
                        "billing_cycle": {"interval": "month", "frequency": 1},
                        "unit_price": {"amount": "4900", "currency_code": "USD"},
                        "status": "active",
                    },
                }
            ],
            "custom_data": custom_data or None,
            "discount": None,
            "import_meta": None,
        },
    }


def deliver(request: PaddleEventRequest, event: dict, secret: str, record: Any) -> list[int]:
    """POST the event (and its duplicates) signed with `secret`; `record(event_id, status)` is called per delivery."""
    body = json.dumps(event).encode()
    key = "not-" + secret if request.bad_signature else secret
    statuses = []
    with httpx.Client(timeout=10) as client:
        for _ in range(1 + int(request.duplicates)):
            header = sign_paddle_webhook(body, key, timestamp=int(time.time() + request.timestamp_offset_seconds))
            try:
                response = client.post(
                    request.url, content=body, headers={SIGNATURE_HEADER: header, "content-type": "application/json"}
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0  # the app did not answer
            statuses.append(status)
            record(event["event_id"], status)
    return statuses


def send_paddle_event(data: Any, secret: str, record: Any, stopping: threading.Event) -> tuple[int, dict]:
    """The control action: (HTTP status, JSON answer) for the simulator's handler."""
    try:
        request = PaddleEventRequest.from_json(data)
    except (TypeError, ValueError) as exc:
        return 400, {"error": str(exc)}
    event = build_event(request)
    if request.delay_ms > 0:

        def later() -> None:
            if not stopping.wait(request.delay_ms / 1000):
                deliver(request, event, secret, record)

        threading.Thread(target=later, name="paddle-webhook", daemon=True).start()
        return 202, {"event_id": event["event_id"], "event": event, "deliveries": []}
    return 200, {"event_id": event["event_id"], "event": event, "deliveries": deliver(request, event, secret, record)}
