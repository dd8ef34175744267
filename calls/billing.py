"""Billing reads an organization's plan from Paddle and keeps the answer in
its Subscription row; while Paddle is unreachable (breaker open, timeouts,
5xx) it answers with that last known plan instead of failing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calls.models import Subscription
from calls.tenancy.models import Organization
from resilience.breaker import CircuitOpenError
from resilience.providers.errors import ProviderError
from resilience.providers.paddle import PaddleClient

logger = logging.getLogger("calliq.calls.billing")


@dataclasses.dataclass(frozen=True)
class Plan:
    plan: str
    status: str
    seats: int
    synced_at: dt.datetime | None
    live: bool  # False: the last known plan, read from the database


def _plan_of(subscription: Subscription, *, live: bool) -> Plan:
    return Plan(subscription.plan, subscription.status, subscription.seats, subscription.synced_at, live)


def current_plan(organization: Organization, *, client: PaddleClient) -> Plan | None:
    """The organization's plan from Paddle, or the last known one if Paddle is
    down; None if the organization has no subscription."""
    subscription = Subscription.objects.filter(organization=organization).first()
    if subscription is None:
        return None
    try:
        data = client.get_subscription(subscription.paddle_subscription_id)
    except (CircuitOpenError, ProviderError) as exc:
        if isinstance(exc, ProviderError) and not exc.retryable:
            raise
        logger.warning("billing for %s: Paddle unavailable (%s); using the last known plan", organization, exc)
        return _plan_of(subscription, live=False)
    items = data.get("items") or [{}]
    subscription.plan = str((data.get("custom_data") or {}).get("plan") or subscription.plan)[:40]
    subscription.status = str(data["status"])[:20]
    subscription.paddle_customer_id = str(data["customer_id"])[:64]
    subscription.seats = int(items[0].get("quantity") or 0)
    ends = (data.get("current_billing_period") or {}).get("ends_at")
    subscription.current_period_ends_at = parse_datetime(ends) if ends else None
    subscription.synced_at = timezone.now()
    subscription.save()
    return _plan_of(subscription, live=True)
