"""Paddle Billing webhook signatures: the `Paddle-Signature` header is
`ts=<unix seconds>;h1=<hex HMAC-SHA256 of "<ts>:<raw body>">`, keyed with the
notification destination's secret. While a secret is being rotated Paddle
sends one h1 per secret, so any matching h1 is enough.

The simulator signs with `sign_paddle_webhook`; the app checks with
`verify_paddle_signature`. Paddle's own SDKs are not a dependency for these
few lines (and their Python SDK pulls in a whole API client)."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Paddle-Signature"
# The subscription events CallIQ applies (calls/billing) and the simulator sends.
SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription.created",
        "subscription.updated",
        "subscription.activated",
        "subscription.trialing",
        "subscription.past_due",
        "subscription.paused",
        "subscription.resumed",
        "subscription.canceled",
    }
)
# Paddle's SDKs default to 5 s; ours comes from PADDLE_WEBHOOK_TOLERANCE_SECONDS.
DEFAULT_TOLERANCE_SECONDS = 5
# A header longer than this is not Paddle's (it sends one or two h1 values).
MAX_HEADER_LENGTH = 1024


class PaddleSignatureError(Exception):
    """The webhook is not Paddle's, or too old or too far in the future: answer 400, apply nothing."""


def _digest(raw_body: bytes, secret: str, ts: str) -> str:
    return hmac.new(secret.encode(), ts.encode() + b":" + raw_body, hashlib.sha256).hexdigest()


def sign_paddle_webhook(raw_body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The Paddle-Signature header value Paddle would send for `raw_body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return f"ts={ts};h1={_digest(raw_body, secret, ts)}"


def verify_paddle_signature(
    raw_body: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise PaddleSignatureError unless `header` signs `raw_body` with `secret`
    at a time within `tolerance_seconds` of `now` (either side: a timestamp
    from the future is as suspect as a replayed old one). Compares in constant time."""
    if not secret:
        raise PaddleSignatureError("no webhook secret is configured (PADDLE_WEBHOOK_SECRET)")
    if not header:
        raise PaddleSignatureError(f"missing {SIGNATURE_HEADER} header")
    if len(header) > MAX_HEADER_LENGTH:
        raise PaddleSignatureError(f"{SIGNATURE_HEADER} header is too long")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep and key == "ts":
            timestamps.append(value)
        elif sep and key == "h1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise PaddleSignatureError(f"{SIGNATURE_HEADER} needs exactly one numeric ts")
    if not signatures:
        raise PaddleSignatureError(f"{SIGNATURE_HEADER} has no h1 signature")
    ts = timestamps[0]
    current = time.time() if now is None else now
    if abs(current - int(ts)) > tolerance_seconds:
        raise PaddleSignatureError(f"{SIGNATURE_HEADER} timestamp is outside the {tolerance_seconds:g} s tolerance")
    expected = _digest(raw_body, secret, ts).encode()
    # Check every h1 (no early exit), each in constant time.
    matches = [hmac.compare_digest(expected, h1.strip().encode()) for h1 in signatures]
    if not any(matches):
        raise PaddleSignatureError(f"{SIGNATURE_HEADER} does not match the body")
