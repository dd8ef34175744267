"""Paddle-Signature verification on its own (resilience/providers/paddle_webhooks.py)."""

import hashlib
import hmac

import pytest

from resilience.providers.paddle_webhooks import PaddleSignatureError, sign_paddle_webhook, verify_paddle_signature

BODY = b'{"event_id": "evt_1", "event_type": "subscription.updated"}'
NOW = 1_764_400_000


def test_a_header_paddle_would_send_is_accepted():
    header = sign_paddle_webhook(BODY, "s3cret", timestamp=NOW)
    expected = hmac.new(b"s3cret", f"{NOW}:".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"ts={NOW};h1={expected}"
    verify_paddle_signature(BODY, header, "s3cret", tolerance_seconds=5, now=NOW + 5)


def test_during_a_secret_rotation_any_matching_h1_is_enough():
    ours = sign_paddle_webhook(BODY, "new-secret", timestamp=NOW).split("h1=")[1]
    header = f"ts={NOW};h1={'0' * 64};h1={ours}"
    verify_paddle_signature(BODY, header, "new-secret", now=NOW)


@pytest.mark.parametrize(
    ("body", "header", "secret", "now", "message"),
    [
        (BODY + b" ", sign_paddle_webhook(BODY, "s3cret", timestamp=NOW), "s3cret", NOW, "does not match"),
        (BODY, sign_paddle_webhook(BODY, "other", timestamp=NOW), "s3cret", NOW, "does not match"),
        (BODY, sign_paddle_webhook(BODY, "s3cret", timestamp=NOW), "s3cret", NOW + 6, "tolerance"),
        (BODY, sign_paddle_webhook(BODY, "s3cret", timestamp=NOW), "s3cret", NOW - 6, "tolerance"),
        (BODY, None, "s3cret", NOW, "missing"),
        (BODY, "", "s3cret", NOW, "missing"),
        (BODY, f"h1={'a' * 64}", "s3cret", NOW, "ts"),
        (BODY, f"ts={NOW};ts={NOW};h1=ab", "s3cret", NOW, "ts"),
        (BODY, f"ts=-{NOW};h1=ab", "s3cret", NOW, "ts"),
        (BODY, f"ts={NOW}", "s3cret", NOW, "no h1"),
        (BODY, f"ts={NOW};h1=é", "s3cret", NOW, "does not match"),
        (BODY, "ts=1;" + "h1=a;" * 400, "s3cret", NOW, "too long"),
        (BODY, sign_paddle_webhook(BODY, "", timestamp=NOW), "", NOW, "no webhook secret"),
    ],
    ids=[
        "tampered body",
        "wrong secret",
        "stale",
        "future",
        "no header",
        "empty header",
        "no ts",
        "two ts",
        "negative ts",
        "no h1",
        "non-ascii h1",
        "huge header",
        "no secret configured",
    ],
)
def test_anything_else_is_refused(body, header, secret, now, message):
    with pytest.raises(PaddleSignatureError, match=message):
        verify_paddle_signature(body, header, secret, tolerance_seconds=5, now=now)
