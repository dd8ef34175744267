"""Paddle Billing client: read a subscription and a customer, and verify the
Paddle-Signature header of webhooks (ts=<unix>;h1=<hex HMAC-SHA256 of "ts:body">)."""

from __future__ import annotations

import hashlib
import hmac
import time

from resilience.providers.base import ProviderClient, require


class WebhookSignatureError(Exception):
    """The webhook did not come from Paddle (or is too old): answer 400, do nothing."""


class PaddleClient(ProviderClient):
    service = "paddle"

    def get_subscription(self, subscription_id: str) -> dict:
        body = self.request_json("GET", f"/subscriptions/{subscription_id}")
        require(self.service, body, "data")
        require(self.service, body["data"], "id", "status", "customer_id")
        return body["data"]

    def get_customer(self, customer_id: str) -> dict:
        body = self.request_json("GET", f"/customers/{customer_id}")
        require(self.service, body, "data")
        require(self.service, body["data"], "id", "email")
        return body["data"]


def sign_webhook(raw_body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Paddle-Signature header Paddle would send (used by the simulator and tests)."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}:".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"ts={ts};h1={digest}"


def verify_webhook_signature(
    raw_body: bytes, header: str | None, secret: str, *, tolerance_seconds: int = 5, now: float | None = None
) -> None:
    """Raise WebhookSignatureError unless `header` signs `raw_body` with `secret`
    within `tolerance_seconds` (replay protection). Several h1 values are
    accepted, as Paddle sends during a secret rotation."""
    if not header:
        raise WebhookSignatureError("missing Paddle-Signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        ts = int(parts["ts"][0])
    except (KeyError, ValueError) as exc:
        raise WebhookSignatureError("Paddle-Signature has no valid ts") from exc
    if not parts.get("h1"):
        raise WebhookSignatureError("Paddle-Signature has no h1")
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        raise WebhookSignatureError("Paddle-Signature timestamp outside the tolerance")
    expected = hmac.new(secret.encode(), f"{ts}:".encode() + raw_body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, h1) for h1 in parts["h1"]):
        raise WebhookSignatureError("Paddle-Signature does not match the body")
