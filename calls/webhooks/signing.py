"""Standard Webhooks signatures (https://www.standardwebhooks.com), made with
the `standardwebhooks` package that receivers verify with.

A secret is `whsec_` + base64 of 32 random bytes. Each attempt is signed
anew with its own timestamp: `webhook-signature` is a space-separated list of
`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret in
force (two for a day after a rotation)."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def signature_headers(*, secrets_in_force: list[str], msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt sent at `now`."""
    # The library reads the datetime's wall clock as UTC: hand it UTC.
    timestamp = now.astimezone(UTC)
    signatures = [Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets_in_force]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
