"""Resend email client. Sends carry an Idempotency-Key, so a retried send
(or an outbox flush after a crash) never mails the rep twice."""

from __future__ import annotations

from resilience.providers.base import ProviderClient, require


class ResendClient(ProviderClient):
    service = "resend"

    def send_email(
        self, *, to: list[str], subject: str, text: str, html: str = "", idempotency_key: str = "", sender: str = ""
    ) -> str:
        """Send one email; returns Resend's email id."""
        payload = {"from": sender or self.config["from_email"], "to": to, "subject": subject, "text": text}
        if html:
            payload["html"] = html
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = self.request_json("POST", "/emails", json=payload, headers=headers)
        require(self.service, body, "id")
        return body["id"]
