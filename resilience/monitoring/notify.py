"""Where alert notifications go: the log (always), email through the Resend
client (CALLIQ_ALERT_EMAILS), a Slack-compatible webhook
(CALLIQ_ALERT_WEBHOOK_URL), and the staff banner (which reads the open
incidents, so it needs no sending). Apps add channels from their ready()
with `register_notifier(name, fn)`.

Email goes straight through ResendClient, so through Resend's breaker and
retry policy, with an Idempotency-Key per incident and direction: the calls
outbox (calls.OutboundEmail) belongs to an organization and resilience may not
import calls, and an alert belongs to no organization. A channel that fails is
logged and never stops the others."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from django.conf import settings

if TYPE_CHECKING:
    from resilience.models import AlertIncident

logger = logging.getLogger("calliq.monitoring.alerts")


@dataclass(frozen=True)
class Notification:
    incident_id: int
    kind: str  # "firing" | "resolved"
    rule: str
    metric: str
    condition: str
    value: float | None
    at: str

    @classmethod
    def of(cls, incident: AlertIncident, kind: str) -> Notification:
        rule = incident.rule
        at = incident.started_at if kind == "firing" else incident.resolved_at
        return cls(
            incident_id=incident.pk,
            kind=kind,
            rule=rule.name,
            metric=rule.metric,
            condition=f"{rule.metric} {rule.comparison} {rule.threshold:g}",
            value=incident.value if kind == "firing" else rule.last_value,
            at=at.isoformat() if at else "",
        )

    @property
    def text(self) -> str:
        shown = "no data" if self.value is None else f"{self.value:.4g}"
        if self.kind == "firing":
            return f"[CallIQ] FIRING: {self.rule} ({self.condition}; now {shown}) since {self.at}"
        return f"[CallIQ] RESOLVED: {self.rule} ({self.condition}; now {shown}) at {self.at}"


Notifier = Callable[[Notification], None]
_notifiers: dict[str, Notifier] = {}


def register_notifier(name: str, notifier: Notifier) -> None:
    _notifiers[name] = notifier


def unregister_notifier(name: str) -> None:
    _notifiers.pop(name, None)


def to_log(note: Notification) -> None:
    (logger.error if note.kind == "firing" else logger.warning)("%s", note.text)


def to_email(note: Notification) -> None:
    recipients = list(getattr(settings, "CALLIQ_ALERT_EMAILS", []))
    if not recipients:
        return
    from resilience.providers.resend import ResendClient

    with ResendClient() as client:
        client.send_email(
            to=recipients,
            subject=note.text[:200],
            text=note.text,
            idempotency_key=f"alert-{note.incident_id}-{note.kind}",
        )


def to_webhook(note: Notification) -> None:
    url = getattr(settings, "CALLIQ_ALERT_WEBHOOK_URL", "")
    if not url:
        return
    payload = {
        "text": note.text,
        "attachments": [
            {
                "color": "danger" if note.kind == "firing" else "good",
                "fields": [
                    {"title": "Rule", "value": note.rule, "short": True},
                    {"title": "Condition", "value": note.condition, "short": True},
                    {
                        "title": "Value",
                        "value": "no data" if note.value is None else f"{note.value:.4g}",
                        "short": True,
                    },
                ],
            }
        ],
    }
    response = httpx.post(url, json=payload, timeout=5.0)
    response.raise_for_status()


register_notifier("log", to_log)
register_notifier("email", to_email)
register_notifier("webhook", to_webhook)


def send(note: Notification) -> None:
    for name, notifier in list(_notifiers.items()):
        try:
            notifier(note)
        except Exception as exc:
            logger.warning("alert %s: %s notification failed: %s", note.rule, name, exc)
