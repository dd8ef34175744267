"""Webhook endpoints, the events sent to them, and the delivery log.

Registered with the calls app (calls/models.py imports this module), like
calls.tenancy.models. An event is stored once with its exact body; a
delivery is that event owed to one endpoint; an attempt is one HTTP POST of
a delivery, with what the endpoint answered."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Self

from django.db import models
from django.utils import timezone

from calls.tenancy.models import Organization


class EventType(models.TextChoices):
    CALL_COMPLETED = "call.completed", "call.completed — a call's analysis is ready"
    CALL_FAILED = "call.failed", "call.failed — a call could not be processed"
    CALL_OUTCOME_CHANGED = "call.outcome_changed", "call.outcome_changed — calls' outcome was set"


# How long the previous secret keeps signing after a rotation.
SECRET_OVERLAP = timedelta(hours=24)

# Sent only by the "Send test event" button, to the one endpoint it was pressed for.
TEST_EVENT = "webhook.test"


class WebhookEndpointQuerySet(models.QuerySet):
    def for_org(self, organization: Organization) -> Self:
        return self.filter(organization=organization)

    def enabled(self) -> Self:
        return self.filter(is_enabled=True)


class WebhookEndpoint(models.Model):
    """Where an organization wants its events. The signing secret is kept
    (signing needs it) but shown only when it is made: on creation and on
    rotation. After a rotation the previous secret still signs, beside the
    new one, until `previous_secret_expires_at`, so a receiver can switch
    without dropping events."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types this endpoint receives.")
    is_enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The current failure streak: failed attempts since the last success, and when it began.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    @property
    def breaker_name(self) -> str:
        # A slug (the breaker policy and event tables store service names as slugs).
        return f"webhook-{self.pk}"

    @property
    def secret_hint(self) -> str:
        return f"{self.secret[:10]}…"

    @classmethod
    def create_with_secret(
        cls, *, organization: Organization, url: str, description: str, events: list[str]
    ) -> tuple[Self, str]:
        """Create an endpoint and return it with its signing secret, to be shown once."""
        from calls.webhooks.signing import generate_secret

        secret = generate_secret()
        endpoint = cls.objects.create(
            organization=organization, url=url, description=description, events=events, secret=secret
        )
        return endpoint, secret

    def rotate_secret(self, *, now: datetime | None = None) -> str:
        """A new secret, returned to be shown once; the old one keeps signing
        beside it for SECRET_OVERLAP."""
        from calls.webhooks.signing import generate_secret

        now = now or timezone.now()
        self.previous_secret, self.secret = self.secret, generate_secret()
        self.previous_secret_expires_at = now + SECRET_OVERLAP
        self.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        return self.secret

    def set_enabled(self, enabled: bool) -> None:
        """Enable (a fresh start: no failure streak, no reason) or disable by hand."""
        if enabled == self.is_enabled:
            return
        self.is_enabled = enabled
        if enabled:
            self.disabled_reason, self.disabled_at = "", None
            self.consecutive_failures, self.failing_since = 0, None
        else:
            self.disabled_reason, self.disabled_at = "Disabled by an admin.", timezone.now()
        self.save(
            update_fields=[
                "is_enabled",
                "disabled_reason",
                "disabled_at",
                "consecutive_failures",
                "failing_since",
                "updated_at",
            ]
        )

    def subscribes_to(self, event_type: str) -> bool:
        return event_type in self.events

    def signing_secrets(self, now: datetime) -> list[str]:
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


class WebhookEvent(models.Model):
    """One event, as sent: `msg_id` is the webhook-id header (the same on every
    attempt and redelivery, so receivers can drop duplicates) and `body` the
    exact JSON bytes that are signed."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_events")
    msg_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=40)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_at"], name="webhook_event_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.msg_id}"


class WebhookDeliveryQuerySet(models.QuerySet):
    def pending(self) -> Self:
        return self.filter(status=WebhookDelivery.Status.PENDING)

    def due(self, now: datetime) -> Self:
        return self.pending().filter(next_attempt_at__lte=now)


class WebhookDelivery(models.Model):
    """An event owed to one endpoint: pending until an attempt succeeds or the
    retry schedule is used up (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Attempts of the current round (a manual redelivery starts a new round of the schedule).
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: the delivery log shown to the organization's admins."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(help_text="1 for the first attempt of the delivery, counting every round.")
    at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=2000, blank=True, help_text="The start of the answer, truncated.")
    error = models.CharField(max_length=300, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_once")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
