"""Billing rows: an organization's billing account and the Paddle events received."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from calls.tenancy.models import Organization


class SubscriptionStatus(models.TextChoices):
    """Paddle Billing's subscription statuses, plus NONE for an organization that never subscribed."""

    NONE = "none", "No subscription"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    PAUSED = "paused", "Paused"
    CANCELED = "canceled", "Canceled"


# The plan's minutes apply while the subscription is in one of these; Paddle
# keeps a past-due subscription running while it retries the payment (dunning).
LIVE_STATUSES = frozenset({SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE})


class BillingAccount(models.Model):
    """An organization's plan and its Paddle subscription as the webhooks last
    told us. Changed only by calls.billing.webhooks.apply_paddle_event."""

    Status = SubscriptionStatus

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="billing_account")
    plan = models.CharField(max_length=32, default="free", help_text="A key of settings.BILLING_PLANS.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NONE)
    paddle_subscription_id = models.CharField(max_length=64, blank=True, db_index=True)
    paddle_customer_id = models.CharField(max_length=64, blank=True, db_index=True)
    price_id = models.CharField(max_length=64, blank=True)
    period_starts_at = models.DateTimeField(null=True, blank=True)
    period_ends_at = models.DateTimeField(null=True, blank=True)
    # Paddle's scheduled_change: {"action": "cancel"|"pause"|"resume", "effective_at": ..., "resume_at": ...}.
    scheduled_change = models.JSONField(null=True, blank=True)
    # The occurred_at of the last event applied for paddle_subscription_id: an older one is stale.
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=SubscriptionStatus.values), name="billing_account_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.plan} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


class PaddleEvent(models.Model):
    """One Paddle webhook event, stored the first time its event id arrives (the
    unique constraint is the idempotency check), with what was done with it."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        STALE = "stale", "Older than the last applied event of its subscription"
        OTHER_SUBSCRIPTION = "other_subscription", "Another subscription while the organization has a live one"
        UNMATCHED = "unmatched", "No organization matched"
        IGNORED_TYPE = "ignored_type", "Event type not handled"

    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    subscription_id = models.CharField(max_length=64, blank=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="paddle_events"
    )
    outcome = models.CharField(max_length=24, choices=Outcome.choices)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.outcome})"
